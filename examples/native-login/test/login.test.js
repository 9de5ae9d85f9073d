// The site's browser test: cardbridge's mock daemon with a virtual 自然人憑證, Chromium driven by
// Playwright, the user's part done in cardbridge's window. Run with `node --test`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { approvalWindow, approve, deny, startMockBridge } from 'cardbridge/testing';
import { createSite } from '../site.js';

let bridge;
let browser;
let site;
let origin;

before(async () => {
  // Listen first to learn the port: the origin is part of what the daemon allows and the token signs.
  const probe = (await import('node:http')).createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address();
  await new Promise((r) => probe.close(r));
  origin = `http://localhost:${port}`;

  bridge = await startMockBridge({ origins: [origin] });
  site = createSite({ origin, bridgeUrl: bridge.url, trust: { roots: [bridge.pki.root], intermediates: [bridge.pki.issuing] } });
  await new Promise((r) => site.listen(port, '127.0.0.1', r));
  // CHROMIUM_PATH: a system Chromium; without it Playwright's own (npx playwright-core install chromium).
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || undefined, args: [...bridge.chromiumArgs, '--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await bridge?.stop();
  await new Promise((r) => (site ? site.close(r) : r()));
});

async function clickLogin() {
  const page = await browser.newPage();
  await page.goto(`${origin}/`);
  const popup = await approvalWindow(page, () => page.click('#login'));
  return { page, popup };
}

test('a citizen logs in with the 自然人憑證 and the back end verifies who it is', async () => {
  const { page, popup } = await clickLogin();
  await approve(popup, { pin: bridge.pin });
  await page.waitForFunction(() => document.getElementById('status').textContent !== '');
  assert.equal(await page.textContent('#status'), `歡迎，${bridge.pki.holder.name}`);
  await page.close();
});

test('a citizen who denies in cardbridge’s window is not logged in', async () => {
  const { page, popup } = await clickLogin();
  await deny(popup);
  await page.waitForFunction(() => document.getElementById('status').textContent !== '');
  assert.equal(await page.textContent('#status'), '已取消登入');
  await page.close();
});

// The legacy login's browser test: cardbridge's mock daemon answers the HiPKI Local Server
// protocol on a free port with a virtual 自然人憑證. Run with `node --test`.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { startMockBridge } from 'cardbridge/testing';
import { createSite } from '../site.js';

let bridge;
let browser;
let site;
let origin;

before(async () => {
  const probe = createServer();
  await new Promise((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address();
  await new Promise((r) => probe.close(r));
  origin = `http://localhost:${port}`;
  bridge = await startMockBridge({ origins: [origin], listeners: ['hipki'] });
  site = createSite({ hipkiUrl: bridge.listeners.hipki, trust: { roots: [bridge.pki.root], intermediates: [bridge.pki.issuing] } });
  await new Promise((r) => site.listen(port, '127.0.0.1', r));
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH || undefined, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await bridge?.stop();
  await new Promise((r) => (site ? site.close(r) : r()));
});

async function logIn(idNumber, pin) {
  const page = await browser.newPage();
  await page.goto(`${origin}/`);
  await page.fill('#id', idNumber);
  await page.fill('#pin', pin);
  await page.click('#submit');
  await page.waitForFunction(() => document.getElementById('status').textContent !== '', undefined, { timeout: 20_000 });
  const status = await page.textContent('#status');
  await page.close();
  return status;
}

// The virtual card's holder is a fake citizen whose ID ends with bridge.pki.holder.idLastFour.
test('the card signs this login’s nonce (PKCS#7) and the typed ID number matches the certificate', async () => {
  assert.equal(await logIn(`A12345${bridge.pki.holder.idLastFour}`, bridge.pin), `歡迎，${bridge.pki.holder.name}`);
});

test('an ID number that does not end with the certificate’s last four is refused', async () => {
  assert.equal(await logIn('A123450000', bridge.pin), '登入失敗：IdNumberMismatch');
  await bridge.resetPin();
});

import { main } from '../../../src/cli/main.js';
import { captureIO } from '../../helpers/capture-io.js';

describe('cardbridge demo (npm start)', () => {
  it('shows the mock readers, keeps running, and stops cleanly on SIGTERM', async () => {
    const io = captureIO();
    const running = main(['demo'], io);
    let finished = false;
    void running.then(() => (finished = true));
    for (let i = 0; i < 1000 && !io.stdout.some((l) => l.includes('Press Ctrl+C')); i++) await new Promise((r) => setTimeout(r, 10));
    expect(io.stdout.some((l) => /Mock Reader 0/.test(l))).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(finished).toBe(false);
    process.emit('SIGTERM');
    await expect(running).resolves.toBe(0);
    expect(io.stdout.at(-1)).toBe('demo stopped');
  });

  it('refuses unexpected arguments', async () => {
    const io = captureIO();
    expect(await main(['demo', '--now'], io)).toBe(2);
    expect(io.stderr[0]).toContain('unexpected argument "--now"');
  });
});

import type { CliIO } from '../../src/cli/io.js';

/** A CliIO that keeps what a command printed, for assertions. */
export function captureIO(isTTY = false): CliIO & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, isTTY, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

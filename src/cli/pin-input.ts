import { emitKeypressEvents } from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import { CardBridgeError } from '../errors.js';
import type { CliInput, CliIO } from './io.js';

/**
 * Reading a PIN from standard input: the first line of a pipe (`--pin-stdin`), or typed at a
 * terminal without echo. Neither ever prints, logs or keeps the PIN beyond returning it.
 */

/** More than any PIN; a longer first line is cut here and then fails the PIN format check. */
const MAX_LINE_CHARS = 256;
const MAX_TYPED_CHARS = 64;

function cancelled(): CardBridgeError {
  return new CardBridgeError('Cancelled', 'Cancelled');
}

/**
 * The first line of `input`, without its line ending (`\n`, or `\r\n`); nothing else is trimmed,
 * so a PIN with a stray space fails the format check instead of being silently changed.
 */
export function readFirstLine(input: CliInput): Promise<string> {
  return new Promise((resolve, reject) => {
    const decoder = new StringDecoder('utf8');
    let text = '';
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.removeListener('error', onError);
      input.pause();
      if (error) reject(error);
      else resolve(text.endsWith('\r') ? text.slice(0, -1) : text);
    };
    const onData = (chunk: Buffer | string) => {
      text += typeof chunk === 'string' ? chunk : decoder.write(chunk);
      const newline = text.indexOf('\n');
      if (newline >= 0) {
        text = text.slice(0, newline);
        finish();
      } else if (text.length > MAX_LINE_CHARS) {
        finish();
      }
    };
    const onEnd = () => {
      text += decoder.end();
      finish();
    };
    const onError = (e: Error) => finish(new CardBridgeError('InvalidInput', `Cannot read the PIN from standard input: ${e.message}`, { cause: e }));
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    input.resume();
  });
}

interface Key {
  name?: string;
  ctrl?: boolean;
  meta?: boolean;
}

/** Whether `input` is a terminal we can switch to raw mode (no echo). */
export function canPromptHidden(input: CliInput | undefined): input is CliInput & { setRawMode(mode: boolean): unknown } {
  return input?.isTTY === true && typeof input.setRawMode === 'function';
}

/**
 * Asks for a secret on a terminal in raw mode: nothing is echoed, Enter ends, Backspace and
 * Ctrl+U edit, Ctrl+C (or Ctrl+D on an empty line, or the end of input) rejects with
 * `Cancelled`. The terminal is always put back in cooked mode.
 */
export function promptHidden(input: CliInput, io: CliIO, prompt: string): Promise<string> {
  if (!canPromptHidden(input)) return Promise.reject(new CardBridgeError('Unavailable', 'Standard input is not a terminal'));
  emitKeypressEvents(input);
  io.err(prompt);
  return new Promise((resolve, reject) => {
    let value = '';
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      input.removeListener('keypress', onKey);
      input.removeListener('end', onEnd);
      try {
        input.setRawMode(false);
      } finally {
        input.pause();
        if (error) reject(error);
        else resolve(value);
      }
    };
    const onKey = (text: string | undefined, key: Key | undefined) => {
      if (key?.ctrl && key.name === 'c') return finish(cancelled());
      if (key?.ctrl && key.name === 'd') return value === '' ? finish(cancelled()) : finish();
      if (key?.name === 'return' || key?.name === 'enter') return finish();
      if (key?.name === 'backspace') {
        value = [...value].slice(0, -1).join('');
        return;
      }
      if (key?.ctrl && key.name === 'u') {
        value = '';
        return;
      }
      if (key?.ctrl || key?.meta || text === undefined) return;
      // Printable characters only; escape sequences (arrow keys …) arrive as named keys above.
      if (/^[^\x00-\x1f\x7f]+$/u.test(text) && [...value].length < MAX_TYPED_CHARS) value += text;
    };
    const onEnd = () => finish(cancelled());
    input.on('keypress', onKey);
    input.once('end', onEnd);
    input.setRawMode(true);
    input.resume();
  });
}

import { asciiJson, bmpToText, textToBmp } from '../shared/json-bitmap.js';

export { asciiJson };

/**
 * JSON packed into the pixels of a 24-bit BMP, one pixel high, so that a page can read it through
 * a canvas (`<img crossOrigin="Anonymous">` + getImageData) — the convention of HiPKI's
 * p11Image.bmp (specs/hipki-local-server.md), which NHI's GetStatus.bmp/GetCardStatus.bmp share:
 *
 * - the JSON's bytes go in order into the pixel array, i.e. pixel i holds bytes 3i, 3i+1, 3i+2
 *   as its B, G, R bytes, so a page reads `String.fromCharCode(B, G, R)` pixel after pixel;
 * - the JSON is pure ASCII (non-ASCII escaped as `\uXXXX`), padded with spaces to a multiple of
 *   3, and followed by all-zero pixels: decoders that stop at the first pixel whose blue byte is
 *   0 (HiPKI's) and decoders that skip zero bytes (NHI's nhiicc.host.js) both read it;
 * - the image always has the same width, so the image's size — observable even by pages that may
 *   not read its pixels — says nothing about the content. NHI's decoder draws on a 1024-pixel
 *   canvas and HiPKI's on a 2000-pixel one; the default width fits both.
 */
export const STATUS_BITMAP_WIDTH = 256;

/** The status as an image a page reads through a canvas. */
export function encodeJsonBitmap(value: unknown, width = STATUS_BITMAP_WIDTH): Buffer {
  return textToBmp(asciiJson(value), width);
}

/** Reads the JSON back as a page's canvas decoder would (for tests and relying sites). */
export function decodeJsonBitmap(bmp: Buffer): unknown {
  return JSON.parse(bmpToText(bmp));
}

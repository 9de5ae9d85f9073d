/**
 * A JSON text packed into the pixels of a 24-bit, 1-pixel-high BMP, for pages that read it
 * through a canvas instead of CORS JSON: HiPKI's `/p11Image.bmp` (specs/hipki-local-server.md)
 * and NHI's `GetStatus.bmp` / `GetCardStatus.bmp`, which follow the same convention.
 *
 * Pages read pixel x as `String.fromCharCode(B, G, R)` and stop at the first pixel whose blue
 * byte is 0. A BMP stores each pixel as B, G, R, so the JSON bytes go into the pixel array in
 * order; the text is padded with spaces to a multiple of 3 and followed by an all-zero pixel.
 */

/** Pages draw the image on a 2000×1 canvas. */
export const MAX_BMP_WIDTH = 2000;
/** The most JSON characters an image can carry: every pixel but the terminating one. */
export const MAX_BMP_TEXT = (MAX_BMP_WIDTH - 1) * 3;

/** JSON with every non-ASCII character as `\uXXXX` (each byte becomes one character on the page). */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The BMP for an ASCII text. Without `width` the image is as narrow as the text allows (text
 * pixels + the all-zero one); a fixed width pads with zero pixels, so the image's size says
 * nothing about its content.
 */
export function textToBmp(text: string, fixedWidth?: number): Buffer {
  if (!/^[\x20-\x7e]*$/.test(text)) throw new RangeError('The image text must be printable ASCII');
  const maxText = Math.min(MAX_BMP_TEXT, ((fixedWidth ?? MAX_BMP_WIDTH) - 1) * 3);
  if (text.length > maxText) throw new RangeError(`The image text is ${text.length} characters; at most ${maxText} fit`);
  const padded = text.padEnd(Math.ceil(text.length / 3) * 3, ' ');
  const width = fixedWidth ?? padded.length / 3 + 1; // + the all-zero pixel
  const rowBytes = width * 3;
  const stride = Math.ceil(rowBytes / 4) * 4; // BMP rows are padded to 4 bytes
  const headerSize = 14 + 40;
  const bmp = Buffer.alloc(headerSize + stride);
  // BITMAPFILEHEADER
  bmp.write('BM', 0, 'latin1');
  bmp.writeUInt32LE(bmp.length, 2);
  bmp.writeUInt32LE(headerSize, 10);
  // BITMAPINFOHEADER
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(width, 18);
  bmp.writeInt32LE(1, 22); // height 1 (bottom-up; one row either way)
  bmp.writeUInt16LE(1, 26); // planes
  bmp.writeUInt16LE(24, 28); // bits per pixel
  bmp.writeUInt32LE(0, 30); // BI_RGB
  bmp.writeUInt32LE(stride, 34);
  bmp.writeInt32LE(2835, 38); // 72 dpi
  bmp.writeInt32LE(2835, 42);
  // Pixels: the text's bytes in order are each pixel's B, G, R; the rest stays zero.
  bmp.write(padded, headerSize, 'latin1');
  return bmp;
}

/** The page's decoding, for tests: characters B, G, R per pixel until a pixel with blue 0. */
export function bmpToText(bmp: Buffer): string {
  if (bmp.toString('latin1', 0, 2) !== 'BM') throw new Error('not a BMP');
  const offset = bmp.readUInt32LE(10);
  const width = bmp.readInt32LE(18);
  if (bmp.readUInt16LE(28) !== 24) throw new Error('not a 24-bit BMP');
  let out = '';
  for (let x = 0; x < width; x++) {
    const [b, g, r] = [bmp[offset + 3 * x]!, bmp[offset + 3 * x + 1]!, bmp[offset + 3 * x + 2]!];
    if (b === 0) break;
    out += String.fromCharCode(b, g, r);
  }
  return out;
}

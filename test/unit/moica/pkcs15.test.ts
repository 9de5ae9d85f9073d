import {
  decodeCertificateObject,
  decodePrivateKeyObject,
  decodePublicKeyObject,
  derElementLength,
  encodeCertificateObject,
  encodeDirectoryFile,
  encodePrivateKeyObject,
  encodePublicKeyObject,
  splitDirectoryRecords,
} from '../../../src/cards/moica/pkcs15.js';
import { decodeNamedBits, encodeNamedBits } from '../../../src/crypto/named-bits.js';
import * as asn1js from 'asn1js';

const certPath = Buffer.from('3F00503008F2', 'hex');

describe('PKCS#15 directory records', () => {
  it('round-trips a CertificateObject with and without length', () => {
    const withLength = { label: 'Signature certificate', id: Buffer.from('SIGN'), path: { path: certPath, index: 0x0e00, length: 1234 } };
    expect(decodeCertificateObject(encodeCertificateObject(withLength))).toEqual(withLength);
    const ca = { id: Buffer.from('ROOTCACert'), authority: true, path: { path: certPath, index: 0 } };
    expect(decodeCertificateObject(encodeCertificateObject(ca))).toEqual(ca);
  });

  it('encodes the path length as [0] IMPLICIT INTEGER inside an explicit [1]', () => {
    const der = encodeCertificateObject({ id: Buffer.from('KEYX'), path: { path: certPath, index: 0x1500, length: 0x0480 } });
    // ... A1 xx 30 xx 30 xx 04 06 3F00503008F2 02 02 1500 80 02 0480
    expect(der.toString('hex')).toContain('a1' + '14' + '30' + '12' + '30' + '10' + '0406' + '3f00503008f2' + '02021500' + '80020480');
  });

  it('round-trips a PrivateKeyObject with usage and key reference', () => {
    const key = {
      label: 'Signature key',
      authId: Buffer.from([1]),
      id: Buffer.from('SIGN'),
      usage: ['sign', 'signRecover', 'nonRepudiation'] as const,
      keyReference: 0x11,
      path: { path: Buffer.from('3F0050300810', 'hex') },
      modulusLength: 2048,
    };
    expect(decodePrivateKeyObject(encodePrivateKeyObject({ ...key, usage: [...key.usage] }))).toEqual({ ...key, usage: [...key.usage] });
  });

  it('round-trips a PuKDF PublicKeyObject: the key EF path and the READ RECORD reference', () => {
    const key = {
      label: 'Signature public key',
      id: Buffer.from('SIGN'),
      usage: ['verify', 'verifyRecover'] as Array<'verify' | 'verifyRecover'>,
      keyReference: 0x01,
      path: { path: Buffer.from('3F0050300811', 'hex') },
      modulusLength: 2048,
    };
    const der = encodePublicKeyObject(key);
    expect(decodePublicKeyObject(der)).toEqual(key);
    // iD, usage bits (verify = 6, verifyRecover = 7) and the reference in CommonKeyAttributes.
    expect(der.toString('hex')).toContain('0404' + Buffer.from('SIGN').toString('hex') + '03020003' + '020101');
    expect(() => decodePublicKeyObject(Buffer.from('3003020101', 'hex'))).toThrow(expect.objectContaining({ message: expect.stringMatching(/PublicKeyObject/) }));
  });

  it('reads records forward until 00 or FF padding, asking for more when one is cut', () => {
    const a = encodeCertificateObject({ id: Buffer.from('SIGN'), path: { path: certPath, index: 0 } });
    const b = encodeCertificateObject({ id: Buffer.from('KEYX'), path: { path: certPath, index: 0x700 } });
    for (const pad of [0x00, 0xff]) {
      const file = encodeDirectoryFile([a, b], 200, pad);
      expect(splitDirectoryRecords(file)).toEqual({ records: [a, b], complete: true, consumed: a.length + b.length });
    }
    const cut = Buffer.concat([a, b.subarray(0, 5)]);
    expect(splitDirectoryRecords(cut)).toEqual({ records: [a], complete: false, consumed: a.length });
    expect(() => splitDirectoryRecords(cut, true)).toThrow(expect.objectContaining({ code: 'ProtocolError' }));
    expect(splitDirectoryRecords(Buffer.concat([a, b]), true).complete).toBe(true);
    expect(() => encodeDirectoryFile([a, b], 10)).toThrow(RangeError);
  });

  it('measures DER elements from their header only', () => {
    expect(derElementLength(Buffer.from('3082', 'hex'))).toBeUndefined();
    expect(derElementLength(Buffer.from('30820480', 'hex'))).toBe(0x484);
    expect(derElementLength(Buffer.from('3005', 'hex'))).toBe(7);
    expect(derElementLength(Buffer.from('308105', 'hex'))).toBe(8);
  });

  it('rejects records that are not PKCS#15 objects', () => {
    expect(() => decodeCertificateObject(Buffer.from('3003020101', 'hex'))).toThrow(expect.objectContaining({ code: 'ProtocolError' }));
    expect(() => decodePrivateKeyObject(Buffer.from('0401ff', 'hex'))).toThrow(expect.objectContaining({ code: 'ProtocolError' }));
  });
});

describe('named bit strings', () => {
  it('encodes DER key usage bits with the right unused-bit count', () => {
    expect(Buffer.from(encodeNamedBits([0, 1]).toBER()).toString('hex')).toBe('030206c0');
    expect(Buffer.from(encodeNamedBits([2, 3]).toBER()).toString('hex')).toBe('03020430');
    expect(Buffer.from(encodeNamedBits([5, 6]).toBER()).toString('hex')).toBe('03020106');
    expect(Buffer.from(encodeNamedBits([2, 3, 9]).toBER()).toString('hex')).toBe('0303063040');
    const parsed = asn1js.fromBER(encodeNamedBits([2, 3, 9]).toBER()).result as asn1js.BitString;
    expect([...decodeNamedBits(parsed)].sort((x, y) => x - y)).toEqual([2, 3, 9]);
  });
});

// Protection System Specific Header boxes (ISO/IEC 23001-7 pssh) and the system-specific data that goes in them:
// the W3C common system / ClearKey (KIDs only, version 1, no data), Widevine (the WidevinePsshData protobuf) and
// PlayReady (a PlayReady Object holding a WRMHEADER). Pure byte builders; the keys themselves never appear here.
//
// PlayReady header produced: WRMHEADER version 4.0.0.0 for 'cenc' (<KID> with ALGID AESCTR, KEYLEN 16) and version
// 4.3.0.0 for 'cbcs' (<KIDS><KID ALGID="AESCBC" VALUE=…/></KIDS>; 4.3 is the first version that can say AESCBC,
// PlayReady 4.0+ clients). No CHECKSUM (it needs the content key; it is optional), an <LA_URL> only when given. The
// KID is base64 of the GUID byte order (the first three fields little-endian) as PlayReady wants it.
import { SmoothcastError } from '../../core/errors.ts';
import type { CencScheme } from './cenc.ts';

export const SYSTEM_IDS = {
  /** W3C "Common PSSH box format" (https://www.w3.org/TR/eme-initdata-cenc/), used by ClearKey players. */
  common: '1077efec-c0b2-4d02-ace3-3c1e52e2fb4b',
  clearkey: 'e2719d58-a985-b3c9-781a-b030af78d30e',
  widevine: 'edef8ba9-79d6-4ace-a3c8-27dcd51d21ed',
  playready: '9a04f079-9840-4286-ab92-e65be0885f95',
} as const;

function internal(message: string): SmoothcastError {
  return new SmoothcastError('INTERNAL', message);
}

function checkKid(kid: Uint8Array, what = 'KID'): void {
  if (!(kid instanceof Uint8Array) || kid.length !== 16) throw internal(`a ${what} is 16 bytes`);
}

/** 'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx' (dashes optional) → its 16 bytes in written order. */
export function uuidBytes(systemId: string): Buffer {
  const hex = systemId.replaceAll('-', '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw internal(`'${systemId}' is not a UUID`);
  return Buffer.from(hex, 'hex');
}

/** A 16-byte KID as the lower-case UUID string DASH's cenc:default_KID attribute carries. */
export function kidUuid(kid: Uint8Array): string {
  checkKid(kid);
  const h = Buffer.from(kid).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * pssh: version 1 listing `kids` when any are given, version 0 otherwise; `data` is the system's own
 * payload (empty for the common/ClearKey system).
 */
export function psshBox(
  systemId: string | Uint8Array,
  kids: readonly Uint8Array[] = [],
  data: Uint8Array = new Uint8Array(0),
): Buffer {
  const id = typeof systemId === 'string' ? uuidBytes(systemId) : Buffer.from(systemId);
  if (id.length !== 16) throw internal('a SystemID is 16 bytes');
  for (const k of kids) checkKid(k);
  const version = kids.length > 0 ? 1 : 0;
  const size = 8 + 4 + 16 + (version ? 4 + 16 * kids.length : 0) + 4 + data.length;
  if (size > 0xffffffff) throw internal('pssh too large');
  const out = Buffer.alloc(size);
  out.writeUInt32BE(size, 0);
  out.write('pssh', 4, 'latin1');
  out.writeUInt32BE(version << 24, 8);
  id.copy(out, 12);
  let at = 28;
  if (version) {
    out.writeUInt32BE(kids.length, at);
    at += 4;
    for (const k of kids) {
      out.set(k, at);
      at += 16;
    }
  }
  out.writeUInt32BE(data.length, at);
  out.set(data, at + 4);
  return out;
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/**
 * WidevinePsshData (the protobuf of Widevine's pssh data): key_id (field 2, bytes) per KID, then protection_scheme
 * (field 9, uint32) as the scheme's four-character code read big-endian ('cenc' = 0x63656e63).
 */
export function widevinePsshData(kids: readonly Uint8Array[], scheme: CencScheme): Buffer {
  const parts: number[] = [];
  for (const k of kids) {
    checkKid(k);
    parts.push(0x12, 16, ...k); // field 2, wire type 2 (length-delimited)
  }
  parts.push(0x48, ...varint(Buffer.from(scheme, 'latin1').readUInt32BE(0))); // field 9, wire type 0 (varint)
  return Buffer.from(parts);
}

/** The KID in GUID byte order (Data1, Data2, Data3 little-endian, Data4 as is), base64: what a WRMHEADER holds. */
export function playreadyKid(kid: Uint8Array): string {
  checkKid(kid);
  const g = Buffer.from(kid);
  const swapped = Buffer.concat([
    Buffer.from(g.subarray(0, 4)).reverse(),
    Buffer.from(g.subarray(4, 6)).reverse(),
    Buffer.from(g.subarray(6, 8)).reverse(),
    g.subarray(8),
  ]);
  return swapped.toString('base64');
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The WRMHEADER XML (see the file comment for the versions). */
export function wrmHeader(kid: Uint8Array, licenseUrl?: string, scheme: CencScheme = 'cenc'): string {
  const k = playreadyKid(kid);
  const la = licenseUrl === undefined ? '' : `<LA_URL>${xmlEscape(licenseUrl)}</LA_URL>`;
  const ns = 'http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader';
  if (scheme === 'cbcs') {
    return (
      `<WRMHEADER xmlns="${ns}" version="4.3.0.0"><DATA><PROTECTINFO><KIDS>` +
      `<KID ALGID="AESCBC" VALUE="${k}"></KID></KIDS></PROTECTINFO>${la}</DATA></WRMHEADER>`
    );
  }
  return (
    `<WRMHEADER xmlns="${ns}" version="4.0.0.0"><DATA><PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID>` +
    `</PROTECTINFO><KID>${k}</KID>${la}</DATA></WRMHEADER>`
  );
}

/**
 * A PlayReady Object (little-endian: Length u32, Record Count u16, then one record of Type 1 = Rights Management
 * Header, Length u16, the WRMHEADER in UTF-16LE): the data of a PlayReady pssh and of a DASH mspr:pro element.
 */
export function playreadyObject(kid: Uint8Array, licenseUrl?: string, scheme: CencScheme = 'cenc'): Buffer {
  const xml = Buffer.from(wrmHeader(kid, licenseUrl, scheme), 'utf16le');
  if (xml.length > 0xffff) throw internal('PlayReady header too large (licence URL too long)');
  const out = Buffer.alloc(10 + xml.length);
  out.writeUInt32LE(out.length, 0);
  out.writeUInt16LE(1, 4); // record count
  out.writeUInt16LE(1, 6); // record type: Rights Management Header
  out.writeUInt16LE(xml.length, 8);
  xml.copy(out, 10);
  return out;
}

// Test-only: an independent reader and reference decryptor of Common Encryption (ISO/IEC 23001-7) fragments, written
// from the spec rather than from cenc.ts (its own field parsing; only the generic box walk of bmff/reader.ts is
// shared). 'cenc': the protected ranges of a sample are joined and decrypted as one AES-CTR stream from IV ‖ 0^64;
// 'cbcs': AES-ECB block by block with the CBC chaining done by hand, the chain restarting from the constant IV at each
// subsample and running over the pattern's encrypted blocks only. Not used in production code.
import { createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { type Box, children } from '../bmff/reader.ts';

function boxesIn(bytes: Uint8Array, start: number, end: number, parent: string): Box[] {
  return [...children(bytes, start, end, parent)];
}

function one(boxes: Box[], type: string): Box {
  const found = boxes.filter((b) => b.type === type);
  if (found.length !== 1) throw new Error(`expected one '${type}', found ${found.length}`);
  return found[0]!;
}

function view(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export interface ProtectionInfo {
  /** The sample entry type ('encv', 'enca') and frma's original format. */
  entryType: string;
  originalFormat: string;
  scheme: string;
  schemeVersion: number;
  tencVersion: number;
  isProtected: number;
  perSampleIvSize: number;
  kid: Buffer;
  cryptByteBlock: number;
  skipByteBlock: number;
  constantIv: Buffer | undefined;
  /** Each pssh box in the moov, whole. */
  pssh: Buffer[];
  /** Box sizes as declared vs. as the enclosing structure says (every enclosing size must be right). */
  moovSize: number;
}

/** Reads the protection scheme boxes of an encrypted init segment (ftyp + moov). */
/** Top-level boxes; there a box of size 0 runs to the end of the file (ISO/IEC 14496-12 §4.2). */
function topBoxes(bytes: Uint8Array): Box[] {
  const b = view(bytes);
  const top: Box[] = [];
  for (let pos = 0; pos + 8 <= bytes.length; ) {
    const field = b.readUInt32BE(pos);
    const large = field === 1;
    const end = large ? pos + Number(b.readBigUInt64BE(pos + 8)) : field === 0 ? bytes.length : pos + field;
    if (end > bytes.length || end < pos + 8) throw new Error(`top-level box at ${pos} has a bad size`);
    top.push({ type: b.toString('latin1', pos + 4, pos + 8), start: pos, payload: pos + (large ? 16 : 8), end });
    pos = end;
  }
  return top;
}

export function readProtection(init: Uint8Array): ProtectionInfo {
  const b = view(init);
  const top = topBoxes(init);
  const moov = one(top, 'moov');
  const inMoov = boxesIn(init, moov.payload, moov.end, 'moov');
  const trak = one(inMoov, 'trak');
  const mdia = one(boxesIn(init, trak.payload, trak.end, 'trak'), 'mdia');
  const minf = one(boxesIn(init, mdia.payload, mdia.end, 'mdia'), 'minf');
  const stbl = one(boxesIn(init, minf.payload, minf.end, 'minf'), 'stbl');
  const stsd = one(boxesIn(init, stbl.payload, stbl.end, 'stbl'), 'stsd');
  const entry = children(init, stsd.payload + 8, stsd.end, 'stsd').next().value;
  if (!entry) throw new Error('no sample entry');
  // VisualSampleEntry: 8 + 70 bytes before its child boxes; AudioSampleEntry (version 0): 8 + 20.
  const childrenAt = entry.payload + (entry.type === 'encv' ? 78 : 28);
  const sinf = one(boxesIn(init, childrenAt, entry.end, entry.type), 'sinf');
  const inSinf = boxesIn(init, sinf.payload, sinf.end, 'sinf');
  const frma = one(inSinf, 'frma');
  const schm = one(inSinf, 'schm');
  const schi = one(inSinf, 'schi');
  const tenc = one(boxesIn(init, schi.payload, schi.end, 'schi'), 'tenc');
  const t = tenc.payload;
  const tencVersion = b[t]!;
  const pattern = b[t + 5]!;
  const isProtected = b[t + 6]!;
  const perSampleIvSize = b[t + 7]!;
  const kid = Buffer.from(b.subarray(t + 8, t + 24));
  let constantIv: Buffer | undefined;
  if (isProtected === 1 && perSampleIvSize === 0) {
    const n = b[t + 24]!;
    constantIv = Buffer.from(b.subarray(t + 25, t + 25 + n));
  }
  return {
    entryType: entry.type,
    originalFormat: b.toString('latin1', frma.payload, frma.payload + 4),
    scheme: b.toString('latin1', schm.payload + 4, schm.payload + 8),
    schemeVersion: b.readUInt32BE(schm.payload + 8),
    tencVersion,
    isProtected,
    perSampleIvSize,
    kid,
    cryptByteBlock: tencVersion > 0 ? pattern >> 4 : 0,
    skipByteBlock: tencVersion > 0 ? pattern & 0xf : 0,
    constantIv,
    pssh: inMoov.filter((x) => x.type === 'pssh').map((x) => Buffer.from(b.subarray(x.start, x.end))),
    moovSize: moov.end - moov.start,
  };
}

export interface SampleAux {
  iv: Buffer;
  /** [clear, protected] pairs; empty: whole-sample encryption. */
  subsamples: [number, number][];
}

export interface EncryptedTraf {
  moofStart: number;
  /** Absolute index of the mdat payload and of where the first trun's data_offset points. */
  mdatPayload: number;
  dataOffsetTarget: number;
  /** Order of the boxes in the traf. */
  boxOrder: string[];
  sencFlags: number;
  /** Absolute index of the senc's first entry, and of where saio points (undefined without saio). */
  sencData: number;
  saioTarget: number | undefined;
  /** saiz sizes per sample (undefined without saiz), and the sizes the senc entries really take. */
  saizSizes: number[] | undefined;
  entrySizes: number[];
  samples: { start: number; size: number }[];
  aux: SampleAux[];
}

/** Sample positions of one traf (§8.8.7–8.8.8), with the defaults of tfhd or `defaultSize` (trex). */
function trafSamples(b: Buffer, moofStart: number, inTraf: Box[], defaultSize = 0) {
  const tfhd = one(inTraf, 'tfhd');
  const tf = b.readUInt32BE(tfhd.payload) & 0xffffff;
  let at = tfhd.payload + 8;
  if (tf & 1) at += 8;
  if (tf & 2) at += 4;
  if (tf & 8) at += 4;
  const size = tf & 0x10 ? b.readUInt32BE(at) : defaultSize;
  const samples: { start: number; size: number }[] = [];
  let next = moofStart;
  let firstTarget = -1;
  for (const trun of inTraf.filter((x) => x.type === 'trun')) {
    const flags = b.readUInt32BE(trun.payload) & 0xffffff;
    const count = b.readUInt32BE(trun.payload + 4);
    let p = trun.payload + 8;
    if (flags & 1) {
      next = moofStart + b.readInt32BE(p);
      if (firstTarget < 0) firstTarget = next;
      p += 4;
    }
    if (flags & 4) p += 4;
    for (let i = 0; i < count; i++) {
      if (flags & 0x100) p += 4;
      const s = flags & 0x200 ? b.readUInt32BE(p) : size;
      if (flags & 0x200) p += 4;
      if (flags & 0x400) p += 4;
      if (flags & 0x800) p += 4;
      samples.push({ start: next, size: s });
      next += s;
    }
  }
  return { samples, firstTarget };
}

/** Every traf of every moof of `segment`: its encryption boxes and samples. */
export function readEncryptedSegment(segment: Uint8Array, perSampleIvSize: number, defaultSize = 0): EncryptedTraf[] {
  const b = view(segment);
  const top = topBoxes(segment);
  const out: EncryptedTraf[] = [];
  top.forEach((moof, i) => {
    if (moof.type !== 'moof') return;
    const mdat = top[i + 1];
    if (mdat?.type !== 'mdat') throw new Error('moof without mdat');
    for (const traf of boxesIn(segment, moof.payload, moof.end, 'moof')) {
      if (traf.type !== 'traf') continue;
      const inTraf = boxesIn(segment, traf.payload, traf.end, 'traf');
      const { samples, firstTarget } = trafSamples(b, moof.start, inTraf, defaultSize);
      if (samples.length === 0 && !inTraf.some((x) => x.type === 'senc')) continue; // nothing to encrypt
      const senc = one(inTraf, 'senc');
      const sencFlags = b.readUInt32BE(senc.payload) & 0xffffff;
      const count = b.readUInt32BE(senc.payload + 4);
      if (count !== samples.length) throw new Error(`senc has ${count} entries for ${samples.length} samples`);
      const aux: SampleAux[] = [];
      const entrySizes: number[] = [];
      let p = senc.payload + 8;
      for (let s = 0; s < count; s++) {
        const from = p;
        const iv = Buffer.from(b.subarray(p, p + perSampleIvSize));
        p += perSampleIvSize;
        const subsamples: [number, number][] = [];
        if (sencFlags & 2) {
          const n = b.readUInt16BE(p);
          p += 2;
          for (let k = 0; k < n; k++, p += 6) subsamples.push([b.readUInt16BE(p), b.readUInt32BE(p + 2)]);
        }
        aux.push({ iv, subsamples });
        entrySizes.push(p - from);
      }
      if (p !== senc.end) throw new Error(`senc entries end at ${p}, the box at ${senc.end}`);
      const saiz = inTraf.find((x) => x.type === 'saiz');
      let saizSizes: number[] | undefined;
      if (saiz) {
        const def = b[saiz.payload + 4]!;
        const n = b.readUInt32BE(saiz.payload + 5);
        saizSizes = def ? Array(n).fill(def) : [...b.subarray(saiz.payload + 9, saiz.payload + 9 + n)];
      }
      const saio = inTraf.find((x) => x.type === 'saio');
      let saioTarget: number | undefined;
      if (saio) {
        if (b.readUInt32BE(saio.payload + 4) !== 1) throw new Error('saio entry_count is not 1');
        const version = b[saio.payload]!;
        const offset = version ? Number(b.readBigUInt64BE(saio.payload + 8)) : b.readUInt32BE(saio.payload + 8);
        saioTarget = moof.start + offset;
      }
      out.push({
        moofStart: moof.start,
        mdatPayload: mdat.payload,
        dataOffsetTarget: firstTarget,
        boxOrder: inTraf.map((x) => x.type),
        sencFlags,
        sencData: senc.payload + 8,
        saioTarget,
        saizSizes,
        entrySizes,
        samples,
        aux,
      });
    }
  });
  return out;
}

/** Where the samples of a clear segment (1..N moof+mdat) lie, in order. */
export function sampleRanges(segment: Uint8Array, defaultSize = 0): { start: number; size: number }[] {
  const b = view(segment);
  const top = topBoxes(segment);
  const out: { start: number; size: number }[] = [];
  for (const moof of top) {
    if (moof.type !== 'moof') continue;
    for (const traf of boxesIn(segment, moof.payload, moof.end, 'moof')) {
      if (traf.type !== 'traf') continue;
      out.push(...trafSamples(b, moof.start, boxesIn(segment, traf.payload, traf.end, 'traf'), defaultSize).samples);
    }
  }
  return out;
}

/** The sample payloads of a clear segment (1..N moof+mdat), in order. */
export function clearSamples(segment: Uint8Array, defaultSize = 0): Buffer[] {
  return sampleRanges(segment, defaultSize).map((s) => Buffer.from(segment.subarray(s.start, s.start + s.size)));
}

/** 'cbcs' pattern decryption of one protected range, in place (23001-7 §10.4): AES-ECB per block, chained by hand. */
function cbcDecryptRange(data: Buffer, key: KeyObject, iv: Buffer, crypt: number, skip: number): void {
  const ecb = createDecipheriv('aes-128-ecb', key, null).setAutoPadding(false);
  let chain = Buffer.from(iv);
  const fullBlocks = Math.floor(data.length / 16);
  const patterned = crypt > 0 || skip > 0;
  for (let block = 0; block < fullBlocks; block++) {
    if (patterned && block % (crypt + skip) >= crypt) continue;
    const cipher = Buffer.from(data.subarray(16 * block, 16 * block + 16));
    const plain = ecb.update(cipher);
    for (let i = 0; i < 16; i++) data[16 * block + i] = plain[i]! ^ chain[i]!;
    chain = cipher;
  }
}

/**
 * The decrypted sample payloads of an encrypted segment, by the reference algorithms above (see the file comment),
 * for comparison with clearSamples of the clear segment.
 */
export function decryptSamples(segment: Uint8Array, prot: ProtectionInfo, rawKey: Buffer, defaultSize = 0): Buffer[] {
  const b = view(segment);
  const key = createSecretKey(rawKey);
  const out: Buffer[] = [];
  for (const traf of readEncryptedSegment(segment, prot.perSampleIvSize, defaultSize)) {
    traf.samples.forEach((s, i) => {
      const sample = Buffer.from(b.subarray(s.start, s.start + s.size));
      const aux = traf.aux[i]!;
      const ranges: [number, number][] = [];
      if (aux.subsamples.length === 0) ranges.push([0, s.size]);
      let pos = 0;
      for (const [c, p] of aux.subsamples) {
        ranges.push([pos + c, pos + c + p]);
        pos += c + p;
      }
      if (aux.subsamples.length > 0 && pos !== s.size) throw new Error(`subsamples cover ${pos} of ${s.size} bytes`);
      if (prot.scheme === 'cenc') {
        const iv = Buffer.alloc(16);
        aux.iv.copy(iv);
        const joined = Buffer.concat(ranges.map(([a, z]) => sample.subarray(a, z)));
        const plain = createDecipheriv('aes-128-ctr', key, iv).update(joined);
        let at = 0;
        for (const [a, z] of ranges) {
          plain.copy(sample, a, at, at + z - a);
          at += z - a;
        }
      } else if (prot.scheme === 'cbcs') {
        const iv = prot.constantIv ?? aux.iv;
        for (const [a, z] of ranges) {
          const part = sample.subarray(a, z);
          cbcDecryptRange(part, key, iv, prot.cryptByteBlock, prot.skipByteBlock);
        }
      } else {
        throw new Error(`scheme ${prot.scheme}`);
      }
      out.push(sample);
    });
  }
  return out;
}

// The MS-SSTR / PIFF TfxdBox ([MS-SSTR] §2.2.4.4): a uuid box in a fragment's traf giving its absolute time and
// duration, which Smooth Streaming clients use to place it. Added to one of our moof+mdat fragments on the fly:
// the box goes at the end of the traf, moof and traf grow by its size, and the trun's data_offset (relative to the
// moof, default-base-is-moof) moves by the same amount because the mdat now starts that much later.
import { SmoothcastError } from '../../core/errors.ts';

const TFXD_UUID = Uint8Array.from([
  0x6d, 0x1d, 0x9b, 0x05, 0x42, 0xd5, 0x44, 0xe6, 0x80, 0xe2, 0x14, 0x1d, 0xaf, 0xf7, 0x57, 0xb2,
]);
export const TFXD_SIZE = 8 + 16 + 4 + 8 + 8;

function boxes(buf: Uint8Array, start: number, end: number): { type: string; start: number; size: number }[] {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: { type: string; start: number; size: number }[] = [];
  for (let at = start; at < end; ) {
    if (at + 8 > end) throw new SmoothcastError('BMFF_MALFORMED', 'truncated box header in fragment');
    const size = v.getUint32(at);
    if (size < 8 || at + size > end) throw new SmoothcastError('BMFF_MALFORMED', `bad box size ${size} in fragment`);
    out.push({ type: String.fromCharCode(...buf.subarray(at + 4, at + 8)), start: at, size });
    at += size;
  }
  return out;
}

/** Returns `fragment` (moof+mdat, one track) with a tfxd carrying `time`/`duration` (track timescale). */
export function addTfxd(fragment: Uint8Array, time: number, duration: number): Uint8Array {
  const top = boxes(fragment, 0, fragment.length);
  const moof = top.find((b) => b.type === 'moof');
  if (!moof) throw new SmoothcastError('BMFF_MALFORMED', 'no moof in fragment');
  const trafs = boxes(fragment, moof.start + 8, moof.start + moof.size).filter((b) => b.type === 'traf');
  if (trafs.length !== 1) throw new SmoothcastError('BMFF_UNSUPPORTED', `expected one traf, found ${trafs.length}`);
  const traf = trafs[0]!;
  const insertAt = traf.start + traf.size;
  const out = new Uint8Array(fragment.length + TFXD_SIZE);
  out.set(fragment.subarray(0, insertAt), 0);
  out.set(fragment.subarray(insertAt), insertAt + TFXD_SIZE);
  const v = new DataView(out.buffer);
  // The tfxd itself: version 1 (64-bit fields).
  v.setUint32(insertAt, TFXD_SIZE);
  out.set([0x75, 0x75, 0x69, 0x64], insertAt + 4); // 'uuid'
  out.set(TFXD_UUID, insertAt + 8);
  v.setUint32(insertAt + 24, 0x01000000);
  v.setBigUint64(insertAt + 28, BigInt(time));
  v.setBigUint64(insertAt + 36, BigInt(duration));
  // Sizes of the enclosing boxes.
  v.setUint32(moof.start, moof.size + TFXD_SIZE);
  v.setUint32(traf.start, traf.size + TFXD_SIZE);
  // data_offset of every trun that has one.
  for (const b of boxes(out, traf.start + 8, traf.start + traf.size)) {
    if (b.type !== 'trun') continue;
    const flags = v.getUint32(b.start + 8) & 0xffffff;
    if (flags & 0x1) v.setInt32(b.start + 16, v.getInt32(b.start + 16) + TFXD_SIZE);
  }
  return out;
}

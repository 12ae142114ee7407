// The MS-SSTR / PIFF boxes a Smooth Streaming client reads in a fragment's traf: the TfxdBox ([MS-SSTR] §2.2.4.4,
// the fragment's own absolute time and duration) and the TfrfBox (§2.2.4.5, the times and durations of the
// fragments that follow it, for live presentations). Added to one of our moof+mdat fragments on the fly: the box goes
// at the end of the traf, moof and traf grow by its size, and the trun's data_offset (relative to the moof,
// default-base-is-moof) moves by the same amount because the mdat now starts that much later (merge.ts editMoof).

import { editMoof, fragmentLayout } from './merge.ts';
import { children, unsupported } from './reader.ts';

const TFXD_UUID = Uint8Array.from([
  0x6d, 0x1d, 0x9b, 0x05, 0x42, 0xd5, 0x44, 0xe6, 0x80, 0xe2, 0x14, 0x1d, 0xaf, 0xf7, 0x57, 0xb2,
]);
const TFRF_UUID = Uint8Array.from([
  0xd4, 0x80, 0x7e, 0xf2, 0xca, 0x39, 0x46, 0x95, 0x8e, 0x54, 0x26, 0xcb, 0x9e, 0x46, 0xa7, 0x9f,
]);
export const TFXD_SIZE = 8 + 16 + 4 + 8 + 8;
/** FragmentCount is one byte. */
export const TFRF_MAX_ENTRIES = 255;

export function tfrfSize(entries: number): number {
  return 8 + 16 + 4 + 1 + 16 * entries;
}

/** A version-1 (64-bit) PIFF uuid box: header, usertype, version/flags, then `fill` writes the fields at 28. */
function piffBox(uuid: Uint8Array, size: number, fill: (view: DataView) => void): Uint8Array {
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, size);
  out.set([0x75, 0x75, 0x69, 0x64], 4); // 'uuid'
  out.set(uuid, 8);
  view.setUint32(24, 0x01000000); // version 1, flags 0
  fill(view);
  return out;
}

function ticks(value: number, what: string): bigint {
  if (!Number.isSafeInteger(value) || value < 0)
    throw unsupported(`${what} ${value} is not a non-negative safe integer`);
  return BigInt(value);
}

/** `fragment` (moof+mdat of one track, possibly after styp/prft) with `box` appended to its one traf. */
function appendToTraf(fragment: Uint8Array, box: Uint8Array): Uint8Array {
  const layout = fragmentLayout(fragment);
  const trafs = [...children(fragment, layout.moof.payload, layout.moof.end, 'moof')].filter((b) => b.type === 'traf');
  if (trafs.length !== 1) throw unsupported(`expected one traf, found ${trafs.length}`);
  const traf = trafs[0]!;
  return editMoof(fragment, layout, [{ traf, at: traf.end, remove: 0, insert: box }]);
}

/** Returns `fragment` (moof+mdat, one track) with a tfxd carrying `time`/`duration` (track timescale). */
export function addTfxd(fragment: Uint8Array, time: number, duration: number): Uint8Array {
  const t = ticks(time, 'tfxd time');
  const d = ticks(duration, 'tfxd duration');
  const box = piffBox(TFXD_UUID, TFXD_SIZE, (v) => {
    v.setBigUint64(28, t);
    v.setBigUint64(36, d);
  });
  return appendToTraf(fragment, box);
}

/**
 * Returns `fragment` (moof+mdat, one track) with a tfrf listing the fragments that follow it: `next[i]` is one
 * fragment's absolute start time and duration in the track timescale (at most 255 of them).
 */
export function addTfrf(fragment: Uint8Array, next: readonly { time: number; duration: number }[]): Uint8Array {
  if (next.length > TFRF_MAX_ENTRIES)
    throw unsupported(`tfrf holds at most ${TFRF_MAX_ENTRIES} entries, not ${next.length}`);
  const entries = next.map((e, i) => [
    ticks(e.time, `tfrf entry ${i} time`),
    ticks(e.duration, `tfrf entry ${i} duration`),
  ]);
  const box = piffBox(TFRF_UUID, tfrfSize(next.length), (v) => {
    v.setUint8(28, next.length);
    entries.forEach(([t, d], i) => {
      v.setBigUint64(29 + 16 * i, t as bigint);
      v.setBigUint64(37 + 16 * i, d as bigint);
    });
  });
  return appendToTraf(fragment, box);
}

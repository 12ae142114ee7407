// What the HLS and DASH writers derive the same way from a rendition.
import type { ManifestRendition } from '../types.ts';

/** Video frame rate: the rendition's own figure, else samples per second over its segments. */
export function frameRate(r: ManifestRendition): number | undefined {
  if (r.track.kind !== 'video') return undefined;
  if (r.frameRate !== undefined && r.frameRate > 0) return r.frameRate;
  let samples = 0;
  let ticks = 0;
  for (const s of r.segments) {
    samples += s.samples;
    ticks += s.duration;
  }
  return ticks > 0 ? (samples * r.track.timescale) / ticks : undefined;
}

/** Every segment starts with a sync sample (HLS EXT-X-INDEPENDENT-SEGMENTS, DASH startWithSAP). */
export function allIndependent(r: ManifestRendition): boolean {
  return r.segments.every((s) => s.startsWithKeyframe);
}

// Microsoft Smooth Streaming client manifest ([MS-SSTR] §2.2.2) for the same CMAF renditions: one video and one
// audio StreamIndex, a QualityLevel per rendition (CodecPrivateData from the avcC's SPS/PPS, the AAC
// AudioSpecificConfig), and the chunk list (`c` with `t`/`d`) in each stream's own TimeScale — the track
// timescale, so chunk times are the fragments' tfdt values as stored. Pure: plain values in, text out.
import { SmoothcastError } from '../../core/errors.ts';
import type { ManifestRendition, Presentation } from '../types.ts';
import { attrs } from './dash.ts';

/** Fragment URL template ([MS-SSTR] §2.2.2.2 StreamIndex@Url), relative to the manifest. */
export function smoothUrlTemplate(name: string, query = ''): string {
  return `QualityLevels({bitrate})/Fragments(${name}={start time})${query}`;
}

/**
 * StreamIndex@Name of each audio rendition: 'audio' for the first (as with a single track), `audio_<id>` for the
 * others — one StreamIndex per language ([MS-SSTR] §2.2.2.3: a client picks among same-type streams by Language),
 * and the name is what the fragment URL carries, so it must be unique.
 */
export function smoothAudioNames(audio: readonly ManifestRendition[]): Map<string, string> {
  return new Map(audio.map((r, i) => [r.id, i === 0 ? 'audio' : `audio_${r.id}`]));
}

/** The bitrate that names a QualityLevel in URLs: the rendition's peak, unique within its stream. */
export function smoothBitrates(reps: readonly ManifestRendition[]): Map<string, number> {
  const out = new Map<string, number>();
  const used = new Set<number>();
  for (const r of reps) {
    let b = Math.ceil(r.peakBitrate);
    while (used.has(b)) b++;
    used.add(b);
    out.set(r.id, b);
  }
  return out;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();

/** [MS-SSTR] §2.2.2.5 CodecPrivateData for H.264: 00000001 SPS 00000001 PPS … (Annex B) from an avcC record. */
export function avcCodecPrivateData(avcC: Uint8Array): string {
  const fail = () => new SmoothcastError('BMFF_MALFORMED', 'avcC too short for its parameter sets');
  let p = 5;
  const units: Uint8Array[] = [];
  for (const countMask of [0x1f, 0xff]) {
    if (p >= avcC.length) throw fail();
    const n = avcC[p]! & countMask;
    p++;
    for (let i = 0; i < n; i++) {
      if (p + 2 > avcC.length) throw fail();
      const len = (avcC[p]! << 8) | avcC[p + 1]!;
      p += 2;
      if (p + len > avcC.length) throw fail();
      units.push(avcC.subarray(p, p + len));
      p += len;
    }
  }
  if (units.length < 2) throw fail();
  return units.map((u) => `00000001${hex(u)}`).join('');
}

/** The opening tag of the video StreamIndex (§2.2.2.3): the largest rung's size, `chunks` fragments. */
export function videoStreamIndex(
  video: readonly Pick<ManifestRendition, 'track' | 'width' | 'height'>[],
  chunks: number,
  query = '',
): string {
  const maxW = Math.max(...video.map((r) => r.width ?? r.track.width ?? 0));
  const maxH = Math.max(...video.map((r) => r.height ?? r.track.height ?? 0));
  return `  <StreamIndex${attrs({
    Type: 'video',
    Name: 'video',
    Chunks: String(chunks),
    QualityLevels: String(video.length),
    Url: smoothUrlTemplate('video', query),
    TimeScale: String(video[0]?.track.timescale ?? 0),
    MaxWidth: String(maxW),
    MaxHeight: String(maxH),
    DisplayWidth: String(maxW),
    DisplayHeight: String(maxH),
  })}>`;
}

/** A video QualityLevel (§2.2.2.5): H.264 with its SPS/PPS as CodecPrivateData. */
export function videoQualityLevel(
  r: Pick<ManifestRendition, 'track' | 'width' | 'height'>,
  index: number,
  bitrate: number,
): string {
  return `    <QualityLevel${attrs({
    Index: String(index),
    Bitrate: String(bitrate),
    FourCC: 'AVC1',
    MaxWidth: String(r.width ?? r.track.width ?? 0),
    MaxHeight: String(r.height ?? r.track.height ?? 0),
    CodecPrivateData: avcCodecPrivateData(r.track.codecConfig),
    NALUnitLengthField: String(((r.track.codecConfig[4] ?? 3) & 3) + 1),
  })}/>`;
}

/** The one QualityLevel of an audio StreamIndex (§2.2.2.5): AAC with its AudioSpecificConfig. */
export function audioQualityLevel(r: Pick<ManifestRendition, 'track'>, bitrate: number): string {
  const channels = r.track.channels ?? 2;
  return `    <QualityLevel${attrs({
    Index: '0',
    Bitrate: String(bitrate),
    FourCC: 'AACL',
    SamplingRate: String(r.track.sampleRate ?? 48000),
    Channels: String(channels),
    BitsPerSample: '16',
    PacketSize: String(2 * channels),
    AudioTag: '255',
    CodecPrivateData: hex(r.track.codecConfig),
  })}/>`;
}

/** `query`: appended to the fragment URLs (signed playback: the token of a clear asset, a viewer session). */
export function writeSmoothManifest(p: Presentation, bitrates: ReadonlyMap<string, number>, query = ''): string {
  if (!p.complete) throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'the Smooth manifest is written when complete');
  const video = p.renditions.filter((r) => r.track.kind === 'video');
  const audio = p.renditions.filter((r) => r.track.kind === 'audio');
  for (const r of video) {
    if (!['avc1', 'avc3'].includes(r.track.sampleEntry)) {
      throw new SmoothcastError(
        'BMFF_UNSUPPORTED',
        `Smooth Streaming here carries H.264 only, not ${r.track.sampleEntry}`,
      );
    }
  }
  // SmoothStreamingMedia@Duration in its TimeScale (100 ns units).
  const duration = Math.round(p.duration * 1e7);
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<SmoothStreamingMedia${attrs({ MajorVersion: '2', MinorVersion: '2', TimeScale: '10000000', Duration: String(duration) })}>`,
  ];
  if (video.length) {
    const ref = video[0]!;
    out.push(videoStreamIndex(video, ref.segments.length, query));
    video.forEach((r, i) => {
      out.push(videoQualityLevel(r, i, bitrates.get(r.id)!));
    });
    out.push(...chunks(ref), '  </StreamIndex>');
  }
  const names = smoothAudioNames(audio);
  for (const r of audio) {
    const ref = r;
    out.push(
      `  <StreamIndex${attrs({
        Type: 'audio',
        Name: names.get(r.id)!,
        Language: r.language ?? 'und',
        Chunks: String(ref.segments.length),
        QualityLevels: '1',
        Url: smoothUrlTemplate(names.get(r.id)!, query),
        TimeScale: String(ref.track.timescale),
      })}>`,
    );
    out.push(audioQualityLevel(r, bitrates.get(r.id)!), ...chunks(ref), '  </StreamIndex>');
  }
  out.push('</SmoothStreamingMedia>');
  return `${out.join('\n')}\n`;
}

/** `c` elements: t on the first and wherever a chunk does not start where the previous one ended. */
function chunks(r: ManifestRendition): string[] {
  let next = -1;
  return r.segments.map((s) => {
    const line = `    <c${attrs({ t: s.start === next ? undefined : String(s.start), d: String(s.duration) })}/>`;
    next = s.start + s.duration;
    return line;
  });
}

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ffmpegFixture, pipedFixture } from './media.ts';

const cacheDir = process.env.SMOOTHCAST_FIXTURES ?? join(tmpdir(), 'smoothcast-fixtures');
mkdirSync(cacheDir, { recursive: true });

const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];
const aac = ['-c:a', 'aac', '-b:a', '96k'];

function cached(key: unknown, ext: string): { out: string; tmp: string } {
  const hash = createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 16);
  return { out: join(cacheDir, `${hash}.${ext}`), tmp: join(mkdtempSync(join(cacheDir, 'tmp-')), `out.${ext}`) };
}

/** Writes `bytes` once under a name derived from `key` and returns the path. */
function cachedBytes(key: unknown, ext: string, make: () => Buffer): string {
  const { out, tmp } = cached(key, ext);
  if (existsSync(out)) return out;
  writeFileSync(tmp, make());
  renameSync(tmp, out);
  return out;
}

function lavfiVideo(seconds: number, rate: number, size = '320x180'): string[] {
  return ['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}:duration=${seconds}`];
}

function lavfiTone(seconds: number, frequency = 440): string[] {
  return ['-f', 'lavfi', '-i', `sine=frequency=${frequency}:sample_rate=48000:duration=${seconds}`];
}

export interface PipedSource {
  name: string;
  file: string;
  seconds: number;
  fps: number;
}

/** VP8/Opus WebM and H.264/AAC Matroska, both written to a pipe: no duration anywhere in their headers. */
export async function pipedSources(): Promise<PipedSource[]> {
  const seconds = 3;
  const fps = 25;
  const webm = await pipedFixture(
    [
      ...lavfiVideo(seconds, fps),
      ...lavfiTone(seconds),
      ...['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '300k'],
      ...['-c:a', 'libopus', '-b:a', '64k'],
      '-shortest',
      ...['-f', 'webm'],
    ],
    'webm',
  );
  const mkv = await pipedFixture(
    [...lavfiVideo(seconds, fps), ...lavfiTone(seconds), ...x264, ...aac, '-shortest', '-f', 'matroska'],
    'mkv',
  );
  return [
    { name: 'WebM (VP8/Opus) from a pipe', file: webm, seconds, fps },
    { name: 'Matroska (H.264/AAC) from a pipe', file: mkv, seconds, fps },
  ];
}

/** Matroska Segment Info Duration: EBML ID 0x4489, size 0x88 (8 bytes), a big-endian float64 in TimestampScale units. */
const DURATION_ELEMENT = Buffer.from([0x44, 0x89, 0x88]);

/**
 * A seekable Matroska file whose Segment Info says it lasts one hour (3,600,000 ms at the default 1 ms
 * TimestampScale) while its frames last `seconds`.
 */
export async function lyingDurationMkv(): Promise<{ file: string; seconds: number; fps: number; claimed: number }> {
  const seconds = 3;
  const fps = 25;
  const honest = await ffmpegFixture(
    [...lavfiVideo(seconds, fps), ...lavfiTone(seconds), ...x264, ...aac, '-shortest'],
    'mkv',
  );
  const file = cachedBytes(['lying-duration', honest], 'mkv', () => {
    const bytes = Buffer.from(readFileSync(honest));
    const at = bytes.indexOf(DURATION_ELEMENT);
    if (at < 0) throw new Error(`${honest}: no 8-byte Segment Info Duration element`);
    if (bytes.indexOf(DURATION_ELEMENT, at + 1) >= 0) throw new Error(`${honest}: two Duration elements`);
    bytes.writeDoubleBE(3_600_000, at + DURATION_ELEMENT.length);
    return bytes;
  });
  return { file, seconds, fps, claimed: 3600 };
}

export interface AudioTrackSpec {
  /** ISO 639-2 as written into the file, and the BCP 47 tag the asset should report. */
  tag: string;
  language: string;
  frequency: number;
  isDefault: boolean;
  roles: string[];
}

/** Matroska with three audio languages: eng (300 Hz), fre (700 Hz, the default), spa (1500 Hz, a commentary). */
export async function multiAudioMkv(): Promise<{ file: string; seconds: number; tracks: AudioTrackSpec[] }> {
  const seconds = 3;
  const tracks: AudioTrackSpec[] = [
    { tag: 'eng', language: 'en', frequency: 300, isDefault: false, roles: ['alternate'] },
    { tag: 'fre', language: 'fr', frequency: 700, isDefault: true, roles: ['main'] },
    { tag: 'spa', language: 'es', frequency: 1500, isDefault: false, roles: ['commentary'] },
  ];
  const file = await ffmpegFixture(
    [
      ...lavfiVideo(seconds, 25),
      ...tracks.flatMap((t) => lavfiTone(seconds, t.frequency)),
      ...['-map', '0:v', ...tracks.flatMap((_, i) => ['-map', `${i + 1}:a`])],
      ...x264,
      ...aac,
      ...tracks.flatMap((t, i) => [`-metadata:s:a:${i}`, `language=${t.tag}`]),
      ...['-disposition:a:0', '0', '-disposition:a:1', 'default', '-disposition:a:2', 'comment'],
    ],
    'mkv',
  );
  return { file, seconds, tracks };
}

/** Audio-only music: a 4 s MP3 with a 300x300 orange cover (ID3v2 APIC), and a 3 s FLAC with no picture. */
export async function audioOnlySources(): Promise<{ mp3: string; flac: string }> {
  const mp3 = await ffmpegFixture(
    [
      ...['-f', 'lavfi', '-i', 'sine=frequency=440:duration=4'],
      ...['-f', 'lavfi', '-i', 'color=c=orange:s=300x300:d=1'],
      ...['-map', '0:a', '-map', '1:v', '-c:a', 'libmp3lame', '-c:v', 'mjpeg', '-frames:v', '1'],
      ...['-disposition:v', 'attached_pic', '-id3v2_version', '3'],
    ],
    'mp3',
  );
  const flac = await ffmpegFixture(['-f', 'lavfi', '-i', 'sine=frequency=500:duration=3', '-c:a', 'flac'], 'flac');
  return { mp3, flac };
}

export interface Cue {
  start: number;
  end: number;
  text: string;
}

export const ENGLISH_CUES: Cue[] = [
  { start: 1, end: 3, text: 'Hello' },
  { start: 4.5, end: 6, text: 'Second line with <i>italics</i>' },
  { start: 7.2, end: 8.4, text: 'Two lines\nof text' },
];

export const FRENCH_CUES: Cue[] = [
  { start: 0.5, end: 2.25, text: 'Bonjour' },
  { start: 3.1, end: 5.9, text: 'Deuxième réplique, avec accents' },
  { start: 6.3, end: 8.8, text: 'Fin' },
];

export const SIDECAR_CUES: Cue[] = [
  { start: 0.8, end: 2.6, text: 'Sous-titre ajouté' },
  { start: 2.7, end: 5.3, text: 'Pour le Québec' },
  { start: 6.04, end: 7.5, text: 'Dernière' },
];

function srtTime(t: number): string {
  const ms = Math.round(t * 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(Math.floor(ms / 3_600_000))}:${pad(Math.floor(ms / 60_000) % 60)}:${pad(Math.floor(ms / 1000) % 60)},${pad(ms % 1000, 3)}`;
}

/** A SubRip file of the cues. */
export function srt(cues: readonly Cue[]): string {
  return cues.map((c, i) => `${i + 1}\n${srtTime(c.start)} --> ${srtTime(c.end)}\n${c.text}\n`).join('\n');
}

/** Writes a SubRip file of the cues into the fixture folder and returns its path. */
export function srtFile(cues: readonly Cue[], name = 'subs'): string {
  return cachedBytes(['srt', cues, name], `${name}.srt`, () => Buffer.from(srt(cues)));
}

/**
 * A PGS (Blu-ray .sup) stream by hand: one display set showing an 8x2 picture at 1 s, one clearing it at 2 s.
 * Segments: "PG", PTS and DTS (90 kHz), type, size; PCS 0x16, WDS 0x17, PDS 0x14, ODS 0x15 (run-length
 * coded: one byte per pixel of a non-zero colour, 0x00 0x00 ends a line), END 0x80.
 */
export function pgsFile(): string {
  return cachedBytes(['pgs', 1], 'sup', () => {
    const seg = (pts: number, type: number, data: Buffer) => {
      const h = Buffer.alloc(13);
      h.write('PG', 0, 'latin1');
      h.writeUInt32BE(pts, 2);
      h.writeUInt32BE(0, 6);
      h.writeUInt8(type, 10);
      h.writeUInt16BE(data.length, 11);
      return Buffer.concat([h, data]);
    };
    const u16 = (...v: number[]) => Buffer.concat(v.map((x) => Buffer.from([x >> 8, x & 0xff])));
    const [w, h] = [8, 2];
    const window = Buffer.concat([Buffer.from([1, 0]), u16(10, 10, w, h)]);
    const show = 90_000;
    const clear = 180_000;
    const rle = Buffer.concat(Array.from({ length: h }, () => Buffer.concat([Buffer.alloc(w, 1), Buffer.alloc(2)])));
    const body = Buffer.concat([u16(w, h), rle]);
    const ods = Buffer.concat([
      u16(0),
      Buffer.from([0, 0xc0, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]),
      body,
    ]);
    return Buffer.concat([
      seg(
        show,
        0x16,
        Buffer.concat([
          u16(320, 180),
          Buffer.from([0x10]),
          u16(0),
          Buffer.from([0x80, 0, 0, 1]),
          u16(0),
          Buffer.from([0, 0]),
          u16(10, 10),
        ]),
      ),
      seg(show, 0x17, window),
      seg(show, 0x14, Buffer.from([0, 0, 1, 235, 128, 128, 255])),
      seg(show, 0x15, ods),
      seg(show, 0x80, Buffer.alloc(0)),
      seg(clear, 0x16, Buffer.concat([u16(320, 180), Buffer.from([0x10]), u16(1), Buffer.from([0, 0, 0, 0])])),
      seg(clear, 0x17, window),
      seg(clear, 0x80, Buffer.alloc(0)),
    ]);
  });
}

export interface SubtitledSource {
  name: string;
  file: string;
  fps: number;
  /** The text tracks the asset should list, in source order. */
  tracks: { language: string; label: string; cues: Cue[]; codec: string }[];
  /** Picture-based subtitle tracks (skipped with a note). */
  imageTracks: number;
}

/**
 * A 9 s Matroska with SubRip eng, SubRip fre (titled "Français"), ASS ger (the English cues) and a PGS ita track;
 * and a 9 s MP4 with a mov_text eng track.
 */
export async function subtitledSources(): Promise<SubtitledSource[]> {
  const seconds = 9;
  const fps = 25;
  const en = srtFile(ENGLISH_CUES, 'en');
  const fr = srtFile(FRENCH_CUES, 'fr');
  const ass = await ffmpegFixture(['-i', en, '-c:s', 'ass'], 'ass');
  const mkv = await ffmpegFixture(
    [
      ...lavfiVideo(seconds, fps),
      ...lavfiTone(seconds),
      ...['-i', en, '-i', fr, '-i', ass, '-i', pgsFile()],
      ...['-map', '0:v', '-map', '1:a', '-map', '2', '-map', '3', '-map', '4', '-map', '5'],
      ...x264,
      ...aac,
      ...['-c:s:0', 'srt', '-c:s:1', 'srt', '-c:s:2', 'ass', '-c:s:3', 'copy'],
      ...['-metadata:s:s:0', 'language=eng', '-metadata:s:s:1', 'language=fre', '-metadata:s:s:1', 'title=Français'],
      ...['-metadata:s:s:2', 'language=ger', '-metadata:s:s:3', 'language=ita'],
    ],
    'mkv',
  );
  const mp4 = await ffmpegFixture(
    [
      ...lavfiVideo(seconds, fps),
      ...lavfiTone(seconds),
      ...['-i', en, '-map', '0:v', '-map', '1:a', '-map', '2'],
      ...x264,
      ...aac,
      ...['-c:s', 'mov_text', '-metadata:s:s:0', 'language=eng'],
    ],
    'mp4',
  );
  return [
    {
      name: 'Matroska with SubRip, ASS and PGS',
      file: mkv,
      fps,
      tracks: [
        { language: 'en', label: 'English', cues: ENGLISH_CUES, codec: 'subrip' },
        { language: 'fr', label: 'Français', cues: FRENCH_CUES, codec: 'subrip' },
        { language: 'de', label: 'German', cues: ENGLISH_CUES, codec: 'ass' },
      ],
      imageTracks: 1,
    },
    {
      name: 'MP4 with mov_text',
      file: mp4,
      fps,
      tracks: [{ language: 'en', label: 'English', cues: ENGLISH_CUES, codec: 'mov_text' }],
      imageTracks: 0,
    },
  ];
}

/** A plain 8 s, 25 fps H.264/AAC clip with no subtitles (for sidecar tracks). */
export function plainClip(): Promise<string> {
  return ffmpegFixture([...lavfiVideo(8, 25), ...lavfiTone(8), ...x264, ...aac, '-shortest'], 'mp4');
}

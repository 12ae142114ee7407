// Small source files of every shape users upload, generated with ffmpeg (lavfi) at test time.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ffmpegFixture, testSource } from './media.ts';

const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];
const aac = ['-c:a', 'aac', '-b:a', '96k'];

export interface GoodSource {
  name: string;
  file: string;
  /** Expected display orientation of the output. */
  portrait: boolean;
  audio: boolean;
}

/** An H.264 (+ AAC unless `audio` is false) MP4 test clip: the shape most tests import or upload. */
export function h264Clip(o: { seconds: number; width?: number; height?: number; audio?: boolean }): Promise<string> {
  return ffmpegFixture([...testSource(o), ...x264, ...(o.audio === false ? [] : [...aac, '-shortest'])], 'mp4');
}

export async function landscape(): Promise<string> {
  return h264Clip({ seconds: 5, width: 640, height: 360 });
}

export async function goodSources(): Promise<GoodSource[]> {
  const base = await landscape();
  // Portrait by rotation metadata only: the stored frames are 640x360, the display matrix turns them 90°.
  const rotated = await ffmpegFixture(['-i', base, '-c', 'copy', '-metadata:s:v:0', 'rotate=90'], 'mp4');
  const noAudio = await ffmpegFixture([...testSource({ seconds: 4, audio: false }), ...x264], 'mp4');
  const odd = await ffmpegFixture(
    [...testSource({ seconds: 4, width: 321, height: 179 }), ...x264, '-pix_fmt', 'yuv444p', ...aac, '-shortest'],
    'mkv',
  );
  const ntsc = await ffmpegFixture(
    [...testSource({ seconds: 5, width: 480, height: 270, rate: '30000/1001' }), ...x264, ...aac, '-shortest'],
    'mp4',
  );
  // Variable frame rate: every 3rd frame of the first 2 s, then every frame (10 fps, then 30 fps).
  const vfr = await ffmpegFixture(
    [
      ...testSource({ seconds: 5, width: 480, height: 270 }),
      '-vf',
      "select='lt(mod(n\\,3)\\,1)+gte(t\\,2)'",
      '-fps_mode',
      'vfr',
      ...x264,
      ...aac,
      '-shortest',
    ],
    'mp4',
  );
  const surround = await ffmpegFixture(
    [
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=480x270:rate=25:duration=4',
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=300:sample_rate=44100:duration=4',
      '-filter_complex',
      '[1:a]pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0[a]',
      '-map',
      '0:v',
      '-map',
      '[a]',
      ...x264,
      ...aac,
      '-ac',
      '6',
    ],
    'mp4',
  );
  return [
    { name: 'landscape', file: base, portrait: false, audio: true },
    { name: 'portrait by rotation metadata', file: rotated, portrait: true, audio: true },
    { name: 'no audio', file: noAudio, portrait: false, audio: false },
    { name: 'odd dimensions', file: odd, portrait: false, audio: true },
    { name: '29.97 fps', file: ntsc, portrait: false, audio: true },
    { name: 'variable frame rate', file: vfr, portrait: false, audio: true },
    { name: '5.1 audio', file: surround, portrait: false, audio: true },
  ];
}

export interface BadSource {
  name: string;
  file: string;
  codes: readonly string[];
}

export async function badSources(dir: string): Promise<BadSource[]> {
  const notVideo = `${dir}/notes.mp4`;
  writeFileSync(notVideo, 'This is a shopping list, not a video.\n'.repeat(50));
  // A file cut short, moov first so ffprobe still believes in the full 10 s.
  const whole = await ffmpegFixture(
    [...testSource({ seconds: 10, width: 640, height: 360 }), ...x264, ...aac, '-shortest', '-movflags', '+faststart'],
    'mp4',
  );
  const truncated = `${dir}/truncated.mp4`;
  if (!existsSync(truncated)) {
    const bytes = readFileSync(whole);
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.4)));
  }
  // Declares a 30000x30000 frame in a few bytes: must be refused from the header, before any decoding.
  const huge = `${dir}/huge.y4m`;
  writeFileSync(
    huge,
    Buffer.concat([Buffer.from('YUV4MPEG2 W30000 H30000 F25:1 Ip A1:1 C420jpeg\nFRAME\n'), Buffer.alloc(4096)]),
  );
  return [
    { name: 'not a video', file: notVideo, codes: ['MEDIA_UNREADABLE'] },
    { name: 'truncated', file: truncated, codes: ['MEDIA_TRUNCATED', 'MEDIA_DECODE_FAILED'] },
    { name: 'enormous declared frame size', file: huge, codes: ['MEDIA_RESOLUTION_TOO_LARGE'] },
  ];
}

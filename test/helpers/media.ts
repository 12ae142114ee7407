// Test media made by ffmpeg at test time (lavfi sources), cached per process run in one temp folder.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const cacheDir = process.env.SMOOTHCAST_FIXTURES ?? join(tmpdir(), 'smoothcast-fixtures');
mkdirSync(cacheDir, { recursive: true });

/**
 * Runs `ffmpeg -y <args> OUT` once per distinct argument list (and extension) and returns OUT's path.
 * Concurrent test files may race; each writes a private temp name then renames, so readers never see a half file.
 */
export async function ffmpegFixture(args: readonly string[], ext: string): Promise<string> {
  const key = createHash('sha256')
    .update(JSON.stringify([args, ext]))
    .digest('hex')
    .slice(0, 16);
  const out = join(cacheDir, `${key}.${ext}`);
  if (existsSync(out)) return out;
  const tmp = mkdtempSync(join(cacheDir, 'tmp-'));
  const partial = join(tmp, `out.${ext}`);
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args, partial], { timeout: 120_000 });
  renameSync(partial, out);
  return out;
}

export async function ffprobeJson(file: string, extra: readonly string[] = []): Promise<Record<string, unknown>> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-of', 'json', ...extra, file], {
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}

/**
 * `ffmpeg <args> pipe:1` with stdout redirected to a file: the muxer cannot seek back, so it writes no duration
 * (Matroska/WebM leave Segment Info Duration and the per-track DURATION tags out).
 */
export async function pipedFixture(args: readonly string[], ext: string): Promise<string> {
  const hash = createHash('sha256')
    .update(JSON.stringify(['pipe', args, ext]))
    .digest('hex')
    .slice(0, 16);
  const out = join(cacheDir, `${hash}.${ext}`);
  const tmp = join(mkdtempSync(join(cacheDir, 'tmp-')), `out.${ext}`);
  if (existsSync(out)) return out;
  const fd = openSync(tmp, 'w');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', ...args, 'pipe:1'], {
        stdio: ['ignore', fd, 'pipe'],
      });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`ffmpeg ${args.join(' ')} → pipe exited ${code}: ${stderr}`));
      });
    });
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, out);
  return out;
}

/**
 * testsrc2 at 30 fps + a 48 kHz sine, H.264/AAC Matroska written to a pipe: no Duration anywhere. `extra` goes
 * after the lavfi inputs (more inputs and maps).
 */
export function pipedMatroska(o: { seconds?: number; extra?: readonly string[] } = {}): Promise<string> {
  return pipedFixture(
    [
      ...testSource({ seconds: o.seconds ?? 10, width: 160, height: 90 }),
      ...(o.extra ?? []),
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac'],
      ...['-f', 'matroska'],
    ],
    'mkv',
  );
}

/** lavfi test pattern with a tone: `seconds` long, WxH at `rate` fps. */
export function testSource(o: { seconds: number; width?: number; height?: number; rate?: string; audio?: boolean }) {
  const w = o.width ?? 320;
  const h = o.height ?? 180;
  const rate = o.rate ?? '30';
  const args = ['-f', 'lavfi', '-i', `testsrc2=size=${w}x${h}:rate=${rate}:duration=${o.seconds}`];
  if (o.audio !== false) args.push('-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${o.seconds}`);
  return args;
}

/**
 * A CMAF file as smoothcast's encoder writes them (one track, empty moov, a moof+mdat per keyframe interval).
 * kind 'video' → H.264 with keyframes every `gop` seconds; 'audio' → AAC-LC stereo 48 kHz in ~2 s fragments.
 */
export async function cmafFixture(kind: 'video' | 'audio', seconds = 6, gop = 2): Promise<string> {
  const common = ['-movflags', '+frag_keyframe+empty_moov+default_base_moof+cmaf', '-f', 'mp4'];
  if (kind === 'video') {
    return ffmpegFixture(
      [
        ...testSource({ seconds, audio: false }),
        '-c:v',
        'libx264',
        '-preset',
        'veryfast',
        '-pix_fmt',
        'yuv420p',
        '-force_key_frames',
        `expr:gte(t,n_forced*${gop})`,
        '-sc_threshold',
        '0',
        '-g',
        '1000',
        ...common,
      ],
      'mp4',
    );
  }
  return ffmpegFixture(
    [
      '-f',
      'lavfi',
      '-i',
      `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
      '-c:a',
      'aac',
      '-ac',
      '2',
      '-ar',
      '48000',
      '-frag_duration',
      String(gop * 1_000_000),
      ...common,
    ],
    'mp4',
  );
}

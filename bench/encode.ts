// npm run bench:encode — a 1080p30 source of 20 s into the full ladder, in the same run:
//   (a) smoothcast: ONE ffmpeg that decodes the source once and encodes every rung (split filter);
//   (b) the reference: one ffmpeg per rung (and one for audio), all started together, each decoding the source.
// Prints both wall times, the ratio a/b (target ≤ 0.60) and the realtime factor of (a).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildEncodeArgs } from '../src/media/encode/ffmpeg-args.ts';
import { type LadderPlan, planLadder } from '../src/media/encode/ladder.ts';
import { ffprobeArgs, interpretProbe } from '../src/media/encode/probe.ts';
import { fmt, machine, makeSource, outFile } from './lib.ts';

const run = promisify(execFile);
const SECONDS = Number(process.env.BENCH_SOURCE_SECONDS ?? 20);
const PRESET = process.env.BENCH_PRESET ?? 'veryfast';

async function ffmpeg(args: string[]): Promise<number> {
  const t = performance.now();
  await run('ffmpeg', args, { timeout: 3_600_000, maxBuffer: 64 * 1024 * 1024 });
  return (performance.now() - t) / 1000;
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'sc-bench-encode-'));
  try {
    console.log(`machine: ${machine()}`);
    const source = join(work, 'source.mp4');
    await makeSource(source, SECONDS, 8);
    const probe = await run('ffprobe', ffprobeArgs(source, { maxPixels: 7680 * 4320 }), {
      maxBuffer: 16 * 1024 * 1024,
    });
    const src = interpretProbe(
      JSON.parse(probe.stdout),
      {
        maxFileSize: 2 ** 40,
        maxDuration: 86400,
        maxWidth: 7680,
        maxHeight: 7680,
        maxPixels: 7680 * 4320,
      },
      statSync(source).size,
    );
    const plan = planLadder(src, { segmentDuration: 2 });
    console.log(
      `ladder: ${plan.video.map((v) => `${v.width}x${v.height}@${Math.round(v.bitrate / 1000)}k`).join(', ')} + audio, preset ${PRESET}`,
    );
    const out = (name: string) => join(work, name);

    // (a) one process for the whole ladder.
    const single = buildEncodeArgs(
      source,
      plan,
      {
        video: plan.video.map((v) => out(`single-${v.id}.mp4`)),
        audio: plan.audio.map((a) => out(`single-${a.id}.mp4`)),
      },
      { preset: PRESET },
    );
    const singleSeconds = await ffmpeg(single);
    console.log(`single process:   ${fmt(singleSeconds)} s`);

    // (b) one process per rung, same settings, all at once (as a naive per-rendition job system runs them); the
    // audio rides with the first rung.
    const perRung: string[][] = plan.video.map((v, i) => {
      const audio = i === 0 ? plan.audio : [];
      const one: LadderPlan = { ...plan, video: [v], audio };
      return buildEncodeArgs(
        source,
        one,
        { video: [out(`rung-${v.id}.mp4`)], audio: audio.map((a) => out(`rung-${a.id}.mp4`)) },
        { preset: PRESET },
      );
    });
    const t = performance.now();
    await Promise.all(perRung.map((args) => ffmpeg(args)));
    const perRungSeconds = (performance.now() - t) / 1000;
    console.log(`one per rung (${perRung.length} processes): ${fmt(perRungSeconds)} s`);
    const ratio = singleSeconds / perRungSeconds;
    const realtime = SECONDS / singleSeconds;
    console.log(`ratio single / per-rung: ${fmt(ratio)}  (target ≤ 0.60)`);
    console.log(`realtime factor (single): ${fmt(realtime)}x  (${SECONDS} s of 1080p30 in ${fmt(singleSeconds)} s)`);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      outFile('encode'),
      `${JSON.stringify({ machine: machine(), seconds: SECONDS, preset: PRESET, singleSeconds, perRungSeconds, ratio, realtime }, null, 2)}\n`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();

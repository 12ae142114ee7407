// A chunk-level simulation of SmoothAbr's policy (web/src/abr/policy.ts, the same code the watch page runs) on
// bandwidth traces: seconds per run instead of the QoE lab's real time, for tuning between lab runs. It is a model
// (constant-size segments, audio folded into each segment, one request at a time, a fixed round trip), not a
// player: the lab (bench:qoe) is what counts. Beside it, a throughput-only rule in the manner of Shaka's default
// (EWMA estimate, 10 s buffer goal, up at 85 % / down at 95 % of the estimate) as a reference.
//   node bench/abr-sim.ts [trace.tsv …]   (default: ../shared/traces/*.tsv and bench/traces/*.tsv)
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { type Observation, type Rung, SmoothPolicy } from '../web/src/abr/policy.ts';

const SEG = 2;
const RTT = 0.08;
const AUDIO = 128_000;
/** The platform's ladder for a 720p source (video bitrates). */
const VIDEO = [145_000, 730_000, 1_100_000, 2_000_000, 3_000_000];
const HEIGHTS = [234, 360, 432, 540, 720];
const RUNGS: Rung[] = VIDEO.map((b, i) => ({
  id: i,
  bandwidth: b + AUDIO,
  width: Math.round((HEIGHTS[i]! * 16) / 9),
  height: HEIGHTS[i]!,
  smooth: true,
}));

function loadTrace(file: string): { t: number; mbps: number }[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => {
      const [t, r] = l.trim().split(/\s+/).map(Number);
      return { t: t!, mbps: r! };
    });
}

/** Bytes per second at time t (the trace loops). */
function rateAt(trace: { t: number; mbps: number }[], t: number): number {
  const end = trace.at(-1)!.t + 1;
  const x = t % end;
  let r = trace[0]!.mbps;
  for (const s of trace) {
    if (s.t > x) break;
    r = s.mbps;
  }
  return (r * 1e6) / 8;
}

interface Chooser {
  goal(): number;
  choose(t: number, buffer: number, started: boolean): number;
  sample(bytes: number, seconds: number): void;
}

function smoothAbr(): Chooser {
  const p = new SmoothPolicy();
  p.setRungs(RUNGS);
  let goal = 60;
  const obs = (t: number, buffer: number, started: boolean): Observation => ({
    now: t * 1000,
    bufferAhead: buffer,
    paused: false,
    hidden: false,
    playbackRate: 1,
    element: { width: 1280, height: 720 },
    devicePixelRatio: 1,
    live: false,
    started,
  });
  return {
    goal: () => goal,
    choose(t, buffer, started) {
      const d = p.decide(obs(t, buffer, started));
      goal = d?.bufferingGoal ?? 60;
      return d?.rung.id ?? 0;
    },
    sample: (bytes, s) => p.sample(bytes, s * 1000),
  };
}

function throughputOnly(): Chooser {
  let fast = 0;
  let slow = 0;
  let w = 0;
  let cur = -1;
  let lastSwitch = -1e9;
  return {
    goal: () => 10,
    choose(t) {
      const est = w ? Math.min(fast, slow) / (1 - 0.5 ** w) : 1e6;
      if (cur < 0) {
        cur = RUNGS.filter((r) => r.bandwidth <= est * 0.85).at(-1)?.id ?? 0;
        return cur;
      }
      if (t - lastSwitch < 8) return cur;
      const up = RUNGS.filter((r) => r.bandwidth <= est * 0.85).at(-1)?.id ?? 0;
      const keep = RUNGS[cur]!.bandwidth <= est * 0.95;
      const next = up > cur ? up : keep ? cur : up;
      if (next !== cur) lastSwitch = t;
      cur = next;
      return cur;
    },
    sample(bytes, s) {
      const bps = (bytes * 8) / s;
      const a2 = 0.5 ** (s / 2);
      const a5 = 0.5 ** (s / 5);
      fast = a2 * fast + (1 - a2) * bps;
      slow = a5 * slow + (1 - a5) * bps;
      w += s;
    },
  };
}

function simulate(trace: { t: number; mbps: number }[], c: Chooser, length: number) {
  let t = 0;
  let buffer = 0;
  let played = 0;
  let stall = 0;
  let started = false;
  let startup = 0;
  const chunks: number[] = [];
  const step = (dt: number) => {
    // Playback during dt.
    if (!started) return;
    const play = Math.min(buffer, dt);
    buffer -= play;
    played += play;
    if (play < dt) stall += dt - play;
  };
  while (played + buffer < length - 1e-9 && t < length * 4) {
    if (buffer >= c.goal()) {
      const wait = buffer - c.goal() + 0.1;
      step(wait);
      t += wait;
      continue;
    }
    const id = c.choose(t, buffer, started);
    const bytes = (RUNGS[id]!.bandwidth * SEG) / 8;
    // Download: the round trip, then the bytes at the trace's rate, in 10 ms steps.
    let left = bytes;
    const t0 = t;
    step(RTT);
    t += RTT;
    while (left > 0) {
      const dt = 0.01;
      left -= rateAt(trace, t) * dt;
      step(dt);
      t += dt;
    }
    c.sample(bytes, t - t0);
    buffer += SEG;
    chunks.push(VIDEO[id]! / 1e6);
    if (process.env.SIM_DEBUG)
      console.log(
        `  t=${t.toFixed(1)} B=${buffer.toFixed(1)} rung=${id} rate=${((rateAt(trace, t) * 8) / 1e6).toFixed(2)}`,
      );
    if (!started && buffer >= 2) {
      started = true;
      startup = t;
    }
  }
  let switches = 0;
  let smooth = 0;
  for (let i = 1; i < chunks.length; i++) {
    if (chunks[i] !== chunks[i - 1]) switches++;
    smooth += Math.abs(chunks[i]! - chunks[i - 1]!);
  }
  const bitrate = chunks.reduce((a, b) => a + b, 0) / chunks.length;
  const qoe = chunks.reduce((a, b) => a + b, 0) - 4.3 * stall - smooth;
  return { startup, stall, bitrate, switches, qoe };
}

const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : [
      ...readdirSync(new URL('../../shared/traces/', import.meta.url).pathname)
        .filter((f) => f.endsWith('.tsv'))
        .map((f) => join(new URL('../../shared/traces/', import.meta.url).pathname, f)),
      ...(() => {
        try {
          const dir = new URL('./traces/', import.meta.url).pathname;
          return readdirSync(dir)
            .filter((f) => f.endsWith('.tsv'))
            .map((f) => join(dir, f));
        } catch {
          return [];
        }
      })(),
    ];
const total = { smooth: { stall: 0, qoe: 0, br: 0 }, tput: { stall: 0, qoe: 0, br: 0 } };
console.log('trace                 policy     startup  stall s  Mb/s  switches  QoE');
for (const f of files) {
  const trace = loadTrace(f);
  const length = Math.min(300, trace.at(-1)!.t);
  let sum = 0;
  for (let x = 0; x < length; x += 0.1) sum += rateAt(trace, x) * 0.1;
  console.log(`${basename(f)}: ${((sum * 8) / length / 1e6).toFixed(2)} Mb/s on average over ${length.toFixed(0)} s`);
  for (const [name, c] of [
    ['smooth', smoothAbr()],
    ['tput', throughputOnly()],
  ] as const) {
    const r = simulate(trace, c, length);
    const k = total[name];
    k.stall += r.stall;
    k.qoe += r.qoe;
    k.br += r.bitrate;
    console.log(
      `${basename(f).padEnd(22)}${name.padEnd(10)}${r.startup.toFixed(1).padStart(8)}${r.stall.toFixed(1).padStart(9)}${r.bitrate.toFixed(2).padStart(6)}${String(r.switches).padStart(10)}${r.qoe.toFixed(0).padStart(6)}`,
    );
  }
}
for (const [name, k] of Object.entries(total)) {
  console.log(
    `total ${name}: stall ${k.stall.toFixed(1)} s, mean bitrate ${(k.br / files.length).toFixed(2)} Mb/s, QoE ${k.qoe.toFixed(0)}`,
  );
}

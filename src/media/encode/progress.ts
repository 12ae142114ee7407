// Parser for ffmpeg's `-progress` output: blocks of `key=value` lines, each block closed by `progress=continue`
// (or `progress=end`, the last one). Written by fftools/ffmpeg.c print_report() every -stats_period (0.5 s).
// Pure and streaming: feed it stdout chunks as they come, split anywhere.

export interface ProgressUpdate {
  /** Media time written so far (the furthest output stream), seconds; 0 while unknown. */
  outTimeSeconds: number;
  /** Encoding speed as a multiple of real time (ffmpeg's `speed=2.5x`); null while unknown. */
  speed: number | null;
  /** Frames encoded (of the first video output). */
  frame?: number;
  /** Frames per second of wall time, as ffmpeg measures it. */
  fps?: number;
  /** True for the final block (`progress=end`). */
  done: boolean;
}

export interface ProgressFigures {
  /** 0–100. */
  percent: number;
  speed: number | null;
  etaSeconds: number | null;
}

/** A line longer than this is not ffmpeg progress (guards memory if stdout carries something else). */
const MAX_LINE = 4096;

export class ProgressParser {
  #partial = '';
  #block = new Map<string, string>();

  /** Feeds one chunk of stdout; returns the blocks it completed, in order. */
  push(chunk: string): ProgressUpdate[] {
    const updates: ProgressUpdate[] = [];
    const lines = (this.#partial + chunk).split('\n');
    this.#partial = lines.pop() ?? '';
    if (this.#partial.length > MAX_LINE) this.#partial = '';
    for (const raw of lines) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      const eq = line.indexOf('=');
      if (eq <= 0) continue;
      const key = line.slice(0, eq).trim();
      const value = line.slice(eq + 1).trim();
      if (key === 'progress') {
        updates.push(toUpdate(this.#block, value === 'end'));
        this.#block = new Map();
      } else {
        this.#block.set(key, value);
      }
    }
    return updates;
  }
}

function toUpdate(block: Map<string, string>, done: boolean): ProgressUpdate {
  const update: ProgressUpdate = { outTimeSeconds: outTime(block), speed: null, done };
  const speed = Number.parseFloat(block.get('speed') ?? ''); // "2.24x", "   0x", "N/A"
  if (Number.isFinite(speed) && speed > 0) update.speed = speed;
  const frame = Number(block.get('frame'));
  if (block.has('frame') && Number.isFinite(frame) && frame >= 0) update.frame = frame;
  const fps = Number(block.get('fps'));
  if (block.has('fps') && Number.isFinite(fps) && fps >= 0) update.fps = fps;
  return update;
}

/**
 * out_time_us, else out_time_ms (which despite its name is also microseconds in every ffmpeg that has it), else
 * out_time (HH:MM:SS.micro). "N/A" before the first packet; ffmpeg < 5 printed a huge negative number instead.
 */
function outTime(block: Map<string, string>): number {
  for (const key of ['out_time_us', 'out_time_ms']) {
    const us = Number(block.get(key));
    if (block.has(key) && Number.isFinite(us)) return Math.max(0, us / 1e6);
  }
  const m = /^(-?)(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(block.get('out_time') ?? '');
  if (!m || m[1] === '-') return 0;
  return Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4]);
}

/**
 * What to show a user. `totalDuration` is the source's duration (s); `elapsedSeconds` the wall time since ffmpeg
 * started, used for the speed when ffmpeg has not reported one yet.
 */
export function progressFigures(
  update: ProgressUpdate,
  totalDuration: number,
  elapsedSeconds: number,
): ProgressFigures {
  if (update.done) return { percent: 100, speed: update.speed, etaSeconds: 0 };
  const out = update.outTimeSeconds;
  const percent = totalDuration > 0 ? Math.min(100, Math.max(0, (out / totalDuration) * 100)) : 0;
  const speed = update.speed ?? (elapsedSeconds > 0 && out > 0 ? out / elapsedSeconds : null);
  const etaSeconds =
    speed !== null && speed > 0 && totalDuration > 0 ? Math.max(0, (totalDuration - out) / speed) : null;
  return { percent, speed, etaSeconds };
}

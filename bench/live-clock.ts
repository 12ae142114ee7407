// The picture clock of bench:live: the publishing ffmpeg draws the wall-clock time each frame is read (ms since the
// epoch, mod 2^32) into the frame as two rows of 32 black/white blocks (the bits, most significant first, then their
// complement as a check); a page decodes it from the video element through a canvas and compares with Date.now()
// (same machine, same clock): glass-to-glass latency measured by the picture itself.
//
// How ffmpeg knows real time: `-re` reads the lavfi source at its frame rate, and the strip's own copy of each frame
// gets `setpts=RTCTIME` (the wall clock, µs, when the frame passes the filter — right after it is read) before `geq`
// turns that time into the blocks; `setpts=N` then puts the strip back on the frame's timeline for the overlay. No
// precomputed epoch offset, so nothing drifts; checkClock() measures what is left.
import { spawn } from 'node:child_process';

export interface ClockLayout {
  /** The frame the layout is drawn in (the publisher's size). */
  width: number;
  height: number;
  /** Top-left corner of the strip, and one block's size, in frame pixels. */
  x: number;
  y: number;
  blockW: number;
  blockH: number;
  bits: number;
}

export const CLOCK: ClockLayout = { width: 1280, height: 720, x: 64, y: 24, blockW: 36, blockH: 32, bits: 32 };

/**
 * The publisher's -filter_complex: input 0's video with the strip overlaid, as [v]. Row 0 holds the bits of
 * floor(T·1000) mod 2^32 (T: the frame's wall-clock time, s), row 1 their complement.
 */
export function clockFilter(L: ClockLayout = CLOCK): string {
  const bit = `mod(floor(ld(0)/pow(2,${L.bits - 1}-X)),2)`;
  const lum = `st(0,mod(floor(T*1000),4294967296));255*if(lt(Y,1),${bit},1-${bit})`;
  return [
    '[0:v]split=2[main][c]',
    `[c]scale=${L.bits}:2:flags=neighbor,format=gray,settb=1/1000000,setpts=RTCTIME,geq=lum='${lum}',settb=1/30,setpts=N,scale=${L.bits * L.blockW}:${2 * L.blockH}:flags=neighbor,format=yuv420p[strip]`,
    `[main][strip]overlay=${L.x}:${L.y}:eof_action=pass[v]`,
  ].join(';');
}

/**
 * Decodes the strip from a picture: `luma(x, y)` is the luma (0–255) at a pixel of the picture, which is the frame
 * scaled by (sx, sy). The value (ms mod 2^32), or null when a bit and its complement disagree. Self-contained (no
 * outer names): the page gets its source text.
 */
export function decodeClock(luma: (x: number, y: number) => number, sx: number, sy: number, L: ClockLayout) {
  let v = 0;
  for (let i = 0; i < L.bits; i++) {
    const cx = (L.x + (i + 0.5) * L.blockW) * sx;
    const bit = luma(cx, (L.y + 0.5 * L.blockH) * sy) >= 128;
    const check = luma(cx, (L.y + 1.5 * L.blockH) * sy) >= 128;
    if (bit === check) return null;
    v = v * 2 + (bit ? 1 : 0);
  }
  return v;
}

/** now − the drawn time, ms, for a decoded value (both mod 2^32; a value from the future comes out negative). */
export function clockLatencyMs(value: number, nowMs: number): number {
  const d = ((((nowMs % 2 ** 32) - value) % 2 ** 32) + 2 ** 32) % 2 ** 32;
  return d > 2 ** 31 ? d - 2 ** 32 : d;
}

/** The little of the DOM the sampler uses (this file is type-checked without the DOM library). */
interface PageVideo {
  videoWidth: number;
  videoHeight: number;
  readyState: number;
}
interface Canvas2D {
  drawImage(
    v: PageVideo,
    sx: number,
    sy: number,
    sw: number,
    sh: number,
    dx: number,
    dy: number,
    dw: number,
    dh: number,
  ): void;
  getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
}
interface PageGlobals {
  document: {
    querySelector(s: 'video'): PageVideo | null;
    createElement(s: 'canvas'): { width: number; height: number; getContext(t: '2d', o: object): Canvas2D | null };
  };
  requestAnimationFrame(f: () => void): number;
  clockSamples: number[];
  clockStats: { frames: number; undecodable: number };
}

/**
 * Installed in the player page (page.evaluate(installClockSampler, { layout, decode: decodeClock.toString() })):
 * every animation frame, the strip's area of the video is drawn into a canvas, decoded, and now − drawn time pushed
 * onto window.clockSamples (ms); window.clockStats counts frames looked at and those that did not decode.
 * Self-contained: playwright sends its source text.
 */
export function installClockSampler(arg: { layout: ClockLayout; decode: string }): void {
  const L = arg.layout;
  const decode = new Function(`return (${arg.decode})`)() as typeof decodeClock;
  const g = globalThis as unknown as PageGlobals;
  g.clockSamples = [];
  g.clockStats = { frames: 0, undecodable: 0 };
  const video = g.document.querySelector('video')!;
  const canvas = g.document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  const tick = () => {
    const vw = video.videoWidth;
    const vh = video.videoHeight;
    if (vw > 0 && vh > 0 && video.readyState >= 2) {
      const sx = vw / L.width;
      const sy = vh / L.height;
      // Only the strip's area, at the picture's own size.
      const x0 = Math.floor(L.x * sx);
      const y0 = Math.floor(L.y * sy);
      const cw = Math.ceil(L.bits * L.blockW * sx) + 2;
      const ch = Math.ceil(2 * L.blockH * sy) + 2;
      if (canvas.width !== cw || canvas.height !== ch) {
        canvas.width = cw;
        canvas.height = ch;
      }
      ctx.drawImage(video, x0, y0, cw, ch, 0, 0, cw, ch);
      const data = ctx.getImageData(0, 0, cw, ch).data;
      const luma = (x: number, y: number) => {
        // A 3×3 average around the point (block centres are far from the block edges).
        let sum = 0;
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            const px = Math.min(cw - 1, Math.max(0, Math.round(x - x0 + dx)));
            const py = Math.min(ch - 1, Math.max(0, Math.round(y - y0 + dy)));
            const o = (py * cw + px) * 4;
            sum += 0.299 * data[o]! + 0.587 * data[o + 1]! + 0.114 * data[o + 2]!;
          }
        }
        return sum / 9;
      };
      const now = Date.now();
      const value = decode(luma, sx, sy, L);
      g.clockStats.frames++;
      if (value === null) g.clockStats.undecodable++;
      else {
        const d = ((((now % 2 ** 32) - value) % 2 ** 32) + 2 ** 32) % 2 ** 32;
        g.clockSamples.push(d > 2 ** 31 ? d - 2 ** 32 : d);
      }
    }
    g.requestAnimationFrame(tick);
  };
  g.requestAnimationFrame(tick);
}

export interface ClockCheck {
  frames: number;
  undecodable: number;
  /** Arrival in this process − drawn time, ms (the filter, a rawvideo pipe, no encoder): median and max. */
  arrivalMedianMs: number;
  arrivalMaxMs: number;
  /** Largest |drawn(n) − drawn(0) − n/30 s|, ms: how far the drawn clock strays from the frame timeline. */
  driftMaxMs: number;
}

/**
 * The clock without encoder or network: ffmpeg runs the same filter on `seconds` of testsrc2 at -re and pipes the
 * strip's rows as raw gray frames here, where each is decoded on arrival. Checks the decoder and how well the drawn
 * time follows the wall clock and the frame timeline.
 */
export async function checkClock(seconds = 3, L: ClockLayout = CLOCK): Promise<ClockCheck> {
  const w = L.bits * L.blockW;
  const h = 2 * L.blockH;
  // biome-ignore format: ffmpeg arguments read best in their groups
  const ff = spawn('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', `testsrc2=size=${L.width}x${L.height}:rate=30`,
    '-t', String(seconds),
    '-filter_complex', `${clockFilter(L)};[v]crop=${w}:${h}:${L.x}:${L.y},format=gray[o]`,
    '-map', '[o]', '-f', 'rawvideo', '-flush_packets', '1', 'pipe:1',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  ff.stderr.on('data', (d) => {
    err += d;
  });
  const frame = w * h;
  let buf = Buffer.alloc(0);
  const drawn: { n: number; v: number }[] = [];
  const arrival: number[] = [];
  let index = 0;
  let undecodable = 0;
  ff.stdout.on('data', (d: Buffer) => {
    const now = Date.now();
    buf = Buffer.concat([buf, d]);
    while (buf.length >= frame) {
      const f = buf.subarray(0, frame);
      buf = buf.subarray(frame);
      const luma = (x: number, y: number) => f[Math.round(y - L.y) * w + Math.round(x - L.x)]!;
      const v = decodeClock(luma, 1, 1, L);
      const n = index++;
      if (v === null) {
        undecodable++;
        continue;
      }
      drawn.push({ n, v });
      arrival.push(clockLatencyMs(v, now));
    }
  });
  const code = await new Promise<number | null>((r) => ff.on('exit', r));
  if (code !== 0) throw new Error(`clock check: ffmpeg exited ${code}: ${err.slice(-500)}`);
  if (drawn.length === 0) throw new Error(`clock check: no frame decoded (${undecodable} did not)`);
  const sorted = [...arrival].sort((a, b) => a - b);
  let driftMaxMs = 0;
  const first = drawn[0]!;
  for (const d of drawn) {
    // Drawn time elapsed since the first decoded frame against the frames' own timeline (30 fps).
    const elapsed = clockLatencyMs(first.v, d.v);
    driftMaxMs = Math.max(driftMaxMs, Math.abs(elapsed - ((d.n - first.n) * 1000) / 30));
  }
  return {
    frames: drawn.length + undecodable,
    undecodable,
    arrivalMedianMs: sorted[Math.floor(sorted.length / 2)]!,
    arrivalMaxMs: sorted.at(-1)!,
    driftMaxMs,
  };
}

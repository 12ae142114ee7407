// SmoothAbr's decisions: a pure function of what the player observes — throughput samples, the buffer ahead,
// decoded and dropped frames, whether the page is hidden or the video out of view, paused, the element's size ×
// device pixel ratio, the playback rate — with no DOM access, so it is unit-tested in Node (test/player). The
// Shaka glue (smooth-abr.ts) feeds it and applies what it decides.
//
// The rules, in the order they cut the ladder down:
//   1. what the device can decode smoothly (MediaCapabilities, as Shaka reports it per variant);
//   2. the player's size: never above the smallest rung that covers element size × min(devicePixelRatio, 2);
//   3. dropped frames: ≥ 15 % over ≥ 5 s of visible playback at rate 1 caps the ladder one rung below the one
//      playing, for 30 s, doubling each time it happens again within 10 minutes (at most 8 minutes);
//   4. hidden (tab in the background, video scrolled out of view): the lowest video rung, and a small buffer;
//   5. bandwidth and buffer: below a comfortable buffer (startup, after a stall, live) the highest rung under 85 %
//      of a robust throughput estimate (harmonic mean of recent samples discounted by the recent prediction error,
//      as RobustMPC does); once the buffer is comfortable, a buffer-scaled allowance over the plain harmonic mean
//      (the buffer absorbs the estimate's error, BBA/BOLA-like), with hysteresis: a rung is left downwards only
//      when the allowance (more lenient for going down than for going up) no longer covers it, and up-switches
//      come at most once per `upInterval` under a steady rate — except when a cap lifts (the player grew, a CPU
//      cap expired), which may jump at once.
// The forward buffer goal is chosen here too: long for VOD (a byte cap for small devices), the page's own for live
// (which keeps its latency target), a few seconds while paused or hidden.

export interface Rung {
  /** The caller's handle for the variant. */
  id: number;
  /** Bits per second of the whole variant (video + audio): what the link must carry. */
  bandwidth: number;
  /** Null for audio only. */
  width: number | null;
  height: number | null;
  /** False when the device says it cannot decode this smoothly (MediaCapabilities). */
  smooth: boolean;
}

export interface Observation {
  /** Milliseconds, monotonic. */
  now: number;
  /** Seconds buffered ahead of the playhead. */
  bufferAhead: number;
  paused: boolean;
  /** The page is hidden or the video is out of view. */
  hidden: boolean;
  playbackRate: number;
  /** CSS pixels of the video's box (the picture-in-picture window's while in it); null before layout. */
  element: { width: number; height: number } | null;
  devicePixelRatio: number;
  live: boolean;
  /** Playback has started (the first frame played). */
  started: boolean;
  /** Height of the picture being shown (0 or null: unknown). */
  playingHeight?: number | null;
}

export interface PolicyConfig {
  /** Forward buffer goal for VOD, seconds. */
  vodGoal: number;
  /** Goal while paused or hidden, seconds. */
  smallGoal: number;
  /** Back buffer kept, seconds. */
  backBuffer: number;
  /** Bytes the forward buffer may hold (small devices); the goal is cut to fit the top allowed rung. */
  maxBufferBytes: number;
  /** Below this buffer (seconds) the throughput rule alone decides. */
  comfortable: number;
  /** Share of the robust estimate used below a comfortable buffer. */
  safety: number;
  /** Minimum seconds between two up-switches under a steady rate. */
  upInterval: number;
  /** Bits per second assumed before the first sample (a carried-over estimate replaces it). */
  defaultEstimate: number;
  /** Dropped-frame share that caps the ladder, over at least `droppedWindow` seconds. */
  droppedShare: number;
  droppedWindow: number;
  /** First CPU cap, seconds; doubles on each repeat within `cpuMemory` seconds, up to `cpuCapMax`. */
  cpuCap: number;
  cpuCapMax: number;
  cpuMemory: number;
  /** Samples (of at least `minSampleBytes`) the estimate looks at. */
  window: number;
  minSampleBytes: number;
}

export const DEFAULTS: PolicyConfig = {
  vodGoal: 60,
  smallGoal: 6,
  backBuffer: 30,
  maxBufferBytes: 150e6,
  comfortable: 10,
  safety: 0.85,
  upInterval: 8,
  defaultEstimate: 1e6,
  droppedShare: 0.15,
  droppedWindow: 5,
  cpuCap: 30,
  cpuCapMax: 480,
  cpuMemory: 600,
  window: 5,
  minSampleBytes: 32_000,
};

/** What the policy chose and why; `bufferingGoal` null: the page's own (live). */
export interface Decision {
  rung: Rung;
  reason: string;
  bufferingGoal: number | null;
  backBuffer: number;
  /** Drop what is buffered beyond `safeMargin` seconds (a cap lifted: show the better picture soon). */
  clearBuffer: boolean;
  safeMargin: number;
}

export function mbps(bits: number): string {
  return `${(bits / 1e6).toFixed(bits >= 1e7 ? 0 : 1)} Mb/s`;
}

/**
 * Throughput: samples are aggregated until they reach `minSampleBytes` (a player reports a download in progress
 * chunks); the estimate is the harmonic mean of the last `window` samples, and the robust one divides it by
 * 1 + the largest relative error the estimate made on those samples.
 */
export class Estimator {
  private readonly samples: number[] = [];
  private readonly errors: number[] = [];
  private pendingBytes = 0;
  private pendingMs = 0;
  private readonly window: number;
  private readonly minBytes: number;

  constructor(window = DEFAULTS.window, minBytes = DEFAULTS.minSampleBytes) {
    this.window = window;
    this.minBytes = minBytes;
  }

  add(bytes: number, ms: number): void {
    if (!(bytes > 0) || !(ms >= 0)) return;
    this.pendingBytes += bytes;
    this.pendingMs += Math.max(1, ms);
    if (this.pendingBytes < this.minBytes) return;
    const bps = (this.pendingBytes * 8 * 1000) / this.pendingMs;
    this.pendingBytes = 0;
    this.pendingMs = 0;
    const predicted = this.harmonic();
    if (predicted !== null) this.errors.push(Math.abs(predicted - bps) / bps);
    this.samples.push(bps);
    if (this.samples.length > this.window) this.samples.shift();
    if (this.errors.length > this.window) this.errors.shift();
  }

  get count(): number {
    return this.samples.length;
  }

  /** Harmonic mean of the recent samples, bits per second; null before the first. */
  harmonic(): number | null {
    if (!this.samples.length) return null;
    return this.samples.length / this.samples.reduce((s, x) => s + 1 / x, 0);
  }

  /** The harmonic mean discounted by the recent prediction error; null before the first sample. */
  robust(): number | null {
    const h = this.harmonic();
    if (h === null) return null;
    const err = this.errors.length ? Math.max(...this.errors) : 0;
    // A single wild sample must not freeze the player at the bottom: the discount is at most half.
    return h / Math.min(2, 1 + err);
  }
}

interface FrameSample {
  at: number;
  decoded: number;
  dropped: number;
}

export class SmoothPolicy {
  readonly config: PolicyConfig;
  readonly estimator: Estimator;
  private rungs: Rung[] = [];
  private current: Rung | null = null;
  private lastUp = Number.NEGATIVE_INFINITY;
  private initialEstimate: number;
  /** Caps as they were at the last decision: a cap that lifts may switch up at once. */
  private lastCapHeight = Number.POSITIVE_INFINITY;
  private frames: FrameSample[] = [];
  private cpuCapHeight: number | null = null;
  private cpuCapUntil = 0;
  private cpuHistory: number[] = [];
  reason = 'starting';

  constructor(config: Partial<PolicyConfig> = {}, initialEstimate?: number | null) {
    this.config = { ...DEFAULTS, ...config };
    this.estimator = new Estimator(this.config.window, this.config.minSampleBytes);
    this.initialEstimate = initialEstimate && initialEstimate > 0 ? initialEstimate : this.config.defaultEstimate;
  }

  /** The variants to choose from (any order); keeps the current one when it is still offered. */
  setRungs(rungs: readonly Rung[]): void {
    this.rungs = [...rungs].sort((a, b) => a.bandwidth - b.bandwidth);
    if (this.current) this.current = this.rungs.find((r) => r.id === this.current?.id) ?? null;
  }

  /** The rung playing now (the player switched, or the caller chose one itself). */
  setCurrent(id: number): void {
    this.current = this.rungs.find((r) => r.id === id) ?? this.current;
  }

  /** A downloaded chunk: `bytes` in `ms`. */
  sample(bytes: number, ms: number): void {
    this.estimator.add(bytes, ms);
  }

  /** The bandwidth estimate, bits per second (the assumed one before any sample). */
  estimate(): number {
    return this.estimator.harmonic() ?? this.initialEstimate;
  }

  /**
   * Cumulative decoded and dropped frame counts (getVideoPlaybackQuality), sampled about once a second. Only
   * visible playback at rate 1 counts; a gap (hidden, paused, another rate) starts the window again.
   */
  frameCounts(decoded: number, dropped: number, o: Observation): void {
    const counts = !o.hidden && !o.paused && o.playbackRate === 1 && o.started;
    if (!counts) {
      this.frames = [];
      return;
    }
    const last = this.frames.at(-1);
    // Counters reset (a new load), or a gap in the sampling (a throttled timer): start the window again.
    if (last && (decoded < last.decoded || dropped < last.dropped || o.now - last.at > 3000)) this.frames = [];
    this.frames.push({ at: o.now, decoded, dropped });
    const first = this.frames[0];
    if (!first) return;
    // Keep just over the window.
    while (this.frames.length > 2 && o.now - (this.frames[1]?.at ?? o.now) >= this.config.droppedWindow * 1000) {
      this.frames.shift();
    }
    const head = this.frames[0] as FrameSample;
    const span = (o.now - head.at) / 1000;
    const total = decoded - head.decoded;
    const lost = dropped - head.dropped;
    if (span < this.config.droppedWindow || total < 30) return;
    if (lost / total < this.config.droppedShare) return;
    const playing = o.playingHeight || this.current?.height || 0;
    const below = this.videoRungs()
      .map((r) => r.height as number)
      .filter((h) => h < playing);
    if (!below.length) return; // the lowest already: nothing to give up
    this.cpuHistory = this.cpuHistory.filter((t) => o.now - t < this.config.cpuMemory * 1000);
    const seconds = Math.min(this.config.cpuCapMax, this.config.cpuCap * 2 ** this.cpuHistory.length);
    this.cpuHistory.push(o.now);
    this.cpuCapHeight = Math.max(...below);
    this.cpuCapUntil = o.now + seconds * 1000;
    this.frames = [];
  }

  /** The CPU cap in force (a height), or null. */
  cpuCap(now: number): number | null {
    if (this.cpuCapHeight !== null && now >= this.cpuCapUntil) this.cpuCapHeight = null;
    return this.cpuCapHeight;
  }

  private videoRungs(): Rung[] {
    return this.rungs.filter((r) => r.height);
  }

  /** The forward buffer goal for what is observed (null: the page's own, for live). */
  bufferingGoal(o: Observation, top: Rung | undefined): number | null {
    if (o.hidden || o.paused) return this.config.smallGoal;
    if (o.live) return null;
    const fit = top ? (this.config.maxBufferBytes * 8) / top.bandwidth : Number.POSITIVE_INFINITY;
    return Math.max(this.config.comfortable, Math.min(this.config.vodGoal, Math.floor(fit)));
  }

  /** Chooses a rung for what is observed now; null when there is nothing to choose from. */
  decide(o: Observation): Decision | null {
    if (!this.rungs.length) return null;
    const c = this.config;
    // 1. What the device decodes smoothly (all of them if it claims none).
    let allowed = this.rungs.filter((r) => r.smooth);
    const unsmooth = this.rungs.filter((r) => !r.smooth && r.height);
    if (!allowed.length) allowed = [...this.rungs];
    const video = allowed.some((r) => r.height);
    let capHeight = Number.POSITIVE_INFINITY;
    let capReason = '';
    const smoothTop = Math.max(0, ...allowed.map((r) => r.height ?? 0));
    const tooBig = unsmooth.map((r) => r.height as number).filter((x) => x > smoothTop);
    if (video && tooBig.length) {
      capHeight = smoothTop;
      capReason = `device cannot decode ${Math.min(...tooBig)}p smoothly`;
    }
    // 2. The player's size.
    if (video && o.element && o.element.width > 0 && o.element.height > 0) {
      const d = Math.min(Math.max(o.devicePixelRatio || 1, 1), 2);
      const needW = o.element.width * d;
      const needH = o.element.height * d;
      const cover = allowed
        .filter((r) => r.height && (r.height as number) >= needH - 1 && (r.width ?? 0) >= needW - 1)
        .map((r) => r.height as number);
      if (cover.length) {
        const h = Math.min(...cover);
        if (h < capHeight && h < smoothTop) {
          capHeight = h;
          capReason = 'player size';
        }
      }
    }
    // 3. Dropped frames.
    const cpu = this.cpuCap(o.now);
    if (video && cpu !== null && cpu < capHeight) {
      capHeight = cpu;
      capReason = 'dropped frames';
    }
    if (video) allowed = allowed.filter((r) => !r.height || (r.height as number) <= capHeight);
    if (!allowed.length) allowed = [this.rungs[0] as Rung];
    const lowestVideo = allowed.find((r) => r.height) ?? (allowed[0] as Rung);
    const top = allowed.at(-1) as Rung;
    const goal = this.bufferingGoal(o, top);
    const base = { bufferingGoal: goal, backBuffer: c.backBuffer, clearBuffer: false, safeMargin: 0 };

    // 4. Hidden: nobody sees the picture.
    if (o.hidden && video) {
      this.lastCapHeight = 0;
      return this.commit({ ...base, rung: lowestVideo, reason: 'hidden: lowest quality, small buffer' }, o);
    }

    // 5. Bandwidth and buffer.
    const h = this.estimator.harmonic();
    const robust = this.estimator.robust();
    const B = o.bufferAhead;
    const liftedCap = capHeight > this.lastCapHeight;
    this.lastCapHeight = capHeight;
    let rung: Rung;
    let reason: string;
    const best = (limit: number) => allowed.filter((r) => r.bandwidth <= limit).at(-1) ?? (allowed[0] as Rung);
    if (h === null || robust === null) {
      // Startup: a conservative share of what is assumed (or carried over from the previous asset).
      rung = best(this.initialEstimate * 0.7);
      reason = `startup: ${mbps(this.initialEstimate)} assumed`;
    } else if (B < c.comfortable || !o.started) {
      // Low buffer: the robust estimate alone.
      const limit = robust * c.safety;
      const cur = this.current && allowed.includes(this.current) ? this.current : null;
      rung = best(limit);
      if (cur && rung.bandwidth > cur.bandwidth && o.now - this.lastUp < c.upInterval * 1000 && !liftedCap) {
        rung = cur;
      }
      reason = `bandwidth ${mbps(robust)}`;
    } else {
      // Comfortable buffer: the buffer pays for the estimate's error. Going up needs the rung to fit a smaller
      // allowance than staying does (hysteresis); both grow with the buffer.
      const fill = Math.min(1, (B - c.comfortable) / Math.max(1, (goal ?? c.vodGoal) - c.comfortable));
      const upLimit = h * (0.9 + 0.3 * fill);
      const stayLimit = h * (1.0 + 1.0 * fill);
      const cur = this.current && allowed.includes(this.current) ? this.current : null;
      const up = best(upLimit);
      if (!cur) rung = up;
      else if (up.bandwidth > cur.bandwidth) {
        rung = o.now - this.lastUp >= c.upInterval * 1000 || liftedCap ? up : cur;
      } else if (cur.bandwidth <= stayLimit) rung = cur;
      else rung = best(stayLimit);
      reason = `bandwidth ${mbps(h)}, buffer ${Math.round(B)} s`;
    }
    // A binding cap is the reason: the highest allowed rung is chosen and a higher one was ruled out.
    if (capReason && rung === top && rung.height && this.rungs.some((r) => (r.height ?? 0) > (rung.height ?? 0))) {
      reason = `capped to ${rung.height}p: ${capReason}`;
    }
    if (o.paused && o.started) reason = 'paused: small buffer';
    const decision: Decision = { ...base, rung, reason };
    // A lifted cap: what is buffered is below what can be shown now — replace it soon, keeping two segments.
    if (liftedCap && this.current && rung.bandwidth > this.current.bandwidth && B > 8) {
      decision.clearBuffer = true;
      decision.safeMargin = 4;
    }
    return this.commit(decision, o);
  }

  private commit(d: Decision, o: Observation): Decision {
    if (this.current && d.rung.bandwidth > this.current.bandwidth) this.lastUp = o.now;
    this.current = d.rung;
    this.reason = d.reason;
    return d;
  }
}

// SmoothAbr: our adaptation policy (policy.ts) as Shaka's shaka.extern.AbrManager, registered with `abrFactory`.
// This file is the glue: it reads the DOM (visibility, whether the video is in view, its size and the device pixel
// ratio, fullscreen and picture-in-picture, dropped frames, the buffer, pause and rate) into observations, asks the
// policy, and applies its choice (switchCallback) and its buffer goal (through the page's `onBufferGoal`).
import type shaka from 'shaka-player/dist/shaka-player.compiled.js';
import { type Decision, type Observation, type PolicyConfig, type Rung, SmoothPolicy } from './policy.ts';

type Variant = shaka.extern.Variant;

/** The last estimate of any SmoothAbr on this page: the next asset of a playlist starts from it. */
let carried: number | null = null;
export function carriedEstimate(): number | null {
  return carried;
}

export interface SmoothAbrOptions {
  /** Applies a buffer goal (seconds; null: the page's own) and the back buffer. */
  onBufferGoal?(goal: number | null, backBuffer: number): void;
  /** Every decision (the watch page's stats line shows its reason). */
  onDecision?(d: Decision): void;
  config?: Partial<PolicyConfig>;
  /** Bits per second to start from (default: the page's last estimate, else the network's hint, else 1 Mb/s). */
  initialEstimate?: number;
}

/** Seconds buffered ahead of the playhead (the range holding it, with a small gap allowance). */
export function bufferedAhead(media: HTMLMediaElement): number {
  const t = media.currentTime;
  const b = media.buffered;
  for (let i = 0; i < b.length; i++) {
    if (b.start(i) <= t + 0.3 && b.end(i) > t) return b.end(i) - t;
  }
  return 0;
}

function networkHint(): number | null {
  const c = (navigator as unknown as { connection?: { downlink?: number } }).connection;
  return c?.downlink && c.downlink > 0 ? c.downlink * 1e6 * 0.8 : null;
}

function deviceBufferBytes(): number | undefined {
  const gb = (navigator as unknown as { deviceMemory?: number }).deviceMemory;
  if (!gb) return undefined;
  return gb <= 1 ? 30e6 : gb <= 2 ? 60e6 : undefined;
}

export class SmoothAbr implements shaka.extern.AbrManager {
  readonly policy: SmoothPolicy;
  private readonly opts: SmoothAbrOptions;
  private switchTo: shaka.extern.AbrManager.SwitchCallback | null = null;
  private enabled = false;
  private variants: Variant[] = [];
  private media: HTMLMediaElement | null = null;
  private restrictions: shaka.extern.Restrictions | null = null;
  private rate = 1;
  private live = false;
  private started = false;
  private inView = true;
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly cleanup: (() => void)[] = [];
  private pip: { width: number; height: number } | null = null;
  private lastGoal: string | null = null;
  private current: Variant | null = null;
  last: Decision | null = null;

  constructor(opts: SmoothAbrOptions = {}) {
    this.opts = opts;
    const bytes = deviceBufferBytes();
    this.policy = new SmoothPolicy(
      { ...(bytes ? { maxBufferBytes: bytes } : {}), ...opts.config },
      opts.initialEstimate ?? carried ?? networkHint(),
    );
  }

  get reason(): string {
    return this.policy.reason;
  }

  init(switchCallback: shaka.extern.AbrManager.SwitchCallback): void {
    this.switchTo = switchCallback;
  }

  stop(): void {
    this.switchTo = null;
    this.enabled = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const f of this.cleanup.splice(0)) f();
  }

  release(): void {
    this.stop();
    this.media = null;
    this.variants = [];
  }

  enable(): void {
    this.enabled = true;
    this.timer ??= setInterval(() => this.tick(), 1000);
  }

  disable(): void {
    this.enabled = false;
  }

  configure(config: shaka.extern.AbrConfiguration): void {
    this.restrictions = config.restrictions;
  }

  playbackRateChanged(rate: number): void {
    this.rate = rate;
  }

  setCmsdManager(): void {}

  getBandwidthEstimate(): number {
    return this.policy.estimate();
  }

  setVariants(variants: Variant[], isLowLatency: boolean): boolean {
    const same =
      variants.length === this.variants.length && variants.every((v, i) => v.id === this.variants[i]?.id);
    this.variants = variants;
    this.live = this.live || isLowLatency;
    this.policy.setRungs(this.playable().map(toRung));
    return !same;
  }

  segmentDownloaded(deltaTimeMs: number, numBytes: number, allowSwitch: boolean, _r?: unknown, context?: unknown) {
    // Audio chunks are small and fetched beside video: their timing says more about latency than bandwidth.
    const type = (context as { stream?: { type?: string } } | undefined)?.stream?.type;
    if (type === 'audio' && this.variants.some((v) => v.video)) return;
    this.policy.sample(numBytes, deltaTimeMs);
    carried = this.policy.estimate();
    if (allowSwitch) this.suggest();
  }

  trySuggestStreams(): void {
    this.suggest();
  }

  chooseVariant(): Variant {
    const d = this.decide();
    const v = (d && this.byId(d.rung.id)) ?? this.playable()[0] ?? (this.variants[0] as Variant);
    this.current = v;
    this.policy.setCurrent(v.id);
    return v;
  }

  setMediaElement(media: HTMLMediaElement | null): void {
    for (const f of this.cleanup.splice(0)) f();
    this.media = media;
    if (!media) return;
    const on = (t: EventTarget, ev: string, f: () => void) => {
      t.addEventListener(ev, f);
      this.cleanup.push(() => t.removeEventListener(ev, f));
    };
    const now = () => this.tick();
    on(document, 'visibilitychange', now);
    on(document, 'fullscreenchange', now);
    on(media, 'pause', now);
    on(media, 'play', now);
    on(media, 'playing', () => {
      this.started = true;
      this.tick();
    });
    on(media, 'enterpictureinpicture', ((e: Event) => {
      const w = (e as unknown as { pictureInPictureWindow?: EventTarget & { width: number; height: number } })
        .pictureInPictureWindow;
      if (!w) return;
      const size = () => {
        this.pip = { width: w.width, height: w.height };
        this.tick();
      };
      size();
      w.addEventListener('resize', size);
      this.cleanup.push(() => w.removeEventListener('resize', size));
    }) as () => void);
    on(media, 'leavepictureinpicture', () => {
      this.pip = null;
      this.tick();
    });
    if (typeof ResizeObserver !== 'undefined') {
      const ro = new ResizeObserver(now);
      ro.observe(media);
      this.cleanup.push(() => ro.disconnect());
    }
    if (typeof IntersectionObserver !== 'undefined') {
      const io = new IntersectionObserver((entries) => {
        this.inView = entries.at(-1)?.isIntersecting ?? true;
        this.tick();
      });
      io.observe(media);
      this.cleanup.push(() => io.disconnect());
    }
  }

  /** What the page shows now, as the policy sees it. */
  observe(): Observation {
    const m = this.media;
    const box = m ? m.getBoundingClientRect() : null;
    const element = this.pip ?? (box && box.width > 0 ? { width: box.width, height: box.height } : null);
    const v = m as HTMLVideoElement | null;
    return {
      now: performance.now(),
      bufferAhead: m ? bufferedAhead(m) : 0,
      paused: m ? m.paused : false,
      hidden: document.visibilityState === 'hidden' || (!this.inView && !this.pip && !document.fullscreenElement),
      playbackRate: m?.playbackRate ?? this.rate,
      element,
      devicePixelRatio: window.devicePixelRatio || 1,
      live: this.live || (m ? !Number.isFinite(m.duration) : false),
      started: this.started,
      playingHeight: v && 'videoHeight' in v ? v.videoHeight || null : null,
    };
  }

  private playable(): Variant[] {
    const r = this.restrictions;
    const now = Date.now() / 1000;
    const ok = this.variants.filter((v) => {
      if (v.disabledUntilTime && v.disabledUntilTime > now) return false;
      if (!v.allowedByApplication || !v.allowedByKeySystem) return false;
      if (!r) return true;
      const w = v.video?.width ?? 0;
      const h = v.video?.height ?? 0;
      return (
        v.bandwidth >= r.minBandwidth &&
        v.bandwidth <= r.maxBandwidth &&
        (!v.video || (w >= r.minWidth && w <= r.maxWidth && h >= r.minHeight && h <= r.maxHeight))
      );
    });
    return ok.length ? ok : this.variants;
  }

  private byId(id: number): Variant | undefined {
    return this.variants.find((v) => v.id === id);
  }

  private decide(): Decision | null {
    const o = this.observe();
    const d = this.policy.decide(o);
    if (!d) return null;
    this.last = d;
    const key = `${d.bufferingGoal}/${d.backBuffer}`;
    if (key !== this.lastGoal) {
      this.lastGoal = key;
      this.opts.onBufferGoal?.(d.bufferingGoal, d.backBuffer);
    }
    this.opts.onDecision?.(d);
    return d;
  }

  /** Samples the dropped frames and re-decides (once a second, and on every event that may change the choice). */
  private tick(): void {
    const m = this.media as HTMLVideoElement | null;
    if (m && typeof m.getVideoPlaybackQuality === 'function') {
      const q = m.getVideoPlaybackQuality();
      this.policy.frameCounts(q.totalVideoFrames, q.droppedVideoFrames, this.observe());
    }
    this.suggest();
  }

  private suggest(): void {
    if (!this.enabled || !this.switchTo) {
      this.decide(); // keep the goal and the reason current even while the user picked a quality
      return;
    }
    const d = this.decide();
    if (!d) return;
    const v = this.byId(d.rung.id);
    if (!v || v === this.current) return;
    this.current = v;
    this.switchTo(v, d.clearBuffer, d.clearBuffer ? d.safeMargin : undefined);
  }
}

function toRung(v: Variant): Rung {
  const smooth = !v.decodingInfos?.length || v.decodingInfos.some((i) => i.supported && i.smooth);
  return {
    id: v.id,
    bandwidth: v.bandwidth,
    width: v.video?.width ?? null,
    height: v.video?.height ?? null,
    smooth,
  };
}

/**
 * Makes `player` adapt with SmoothAbr (set before load). The buffer goal it asks for is applied to the player's
 * streaming config; null restores the goal the page had configured (live keeps its latency settings).
 */
export function installSmoothAbr(
  player: shaka.Player,
  opts: Omit<SmoothAbrOptions, 'onBufferGoal'> = {},
): { current(): SmoothAbr | null } {
  const base = player.getConfiguration().streaming;
  const own = { bufferingGoal: base.bufferingGoal, bufferBehind: base.bufferBehind };
  let latest: SmoothAbr | null = null;
  player.configure({
    abrFactory: () => {
      latest = new SmoothAbr({
        ...opts,
        onBufferGoal: (goal, behind) => {
          player.configure({
            streaming: {
              bufferingGoal: goal ?? own.bufferingGoal,
              bufferBehind: goal === null ? own.bufferBehind : behind,
            },
          });
        },
      });
      return latest;
    },
  });
  return { current: () => latest };
}

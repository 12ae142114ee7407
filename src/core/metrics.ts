// Prometheus metrics of one process: a registry of its own (never prom-client's global one, so tests and several
// platforms in one process do not share counters), Node's default metrics in it under `smoothcast_`, and small
// typed helpers for the code that counts. Label values come from fixed sets wherever the caller could otherwise
// pass something open-ended (formats, results, methods, error codes): one series per value, so a client cannot
// grow the scrape by sending odd requests.
//
// Gauges of state kept elsewhere (jobs in the database, live streams and viewers) are read on scrape through a
// callback the owner registers. text() runs each callback at most once per scrape — concurrent scrapes share one
// collection, and a callback still running from an earlier scrape is waited on, never called again — and gives
// up on it after `collectTimeoutMs`: its series are then left out of that scrape (no stale value that looks
// fresh) and `smoothcast_metrics_collector_failures_total{collector,reason}` counts the miss.
//
// Useful PromQL:
//   index cache hit ratio (5 min):
//     sum(rate(smoothcast_index_cache_lookups_total{result="hit"}[5m]))
//       / sum(rate(smoothcast_index_cache_lookups_total[5m]))
//   egress by format:       sum by (format) (rate(smoothcast_segment_bytes_total[5m])) * 8
//   5xx ratio:              sum(rate(smoothcast_http_requests_total{status=~"5.."}[5m]))
//                             / sum(rate(smoothcast_http_requests_total[5m]))
//   p99 latency per route:  histogram_quantile(0.99,
//                             sum by (le, route) (rate(smoothcast_http_request_duration_seconds_bucket[5m])))
//   median encode speed:    histogram_quantile(0.5, sum by (le) (rate(smoothcast_encode_speed_ratio_bucket[1h])))
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { ERRORS } from './errors.ts';

export const METRICS_PREFIX = 'smoothcast_';

/** HLS and DASH share the same CMAF segment URLs (one response, cacheable for both), so they are one format. */
export type SegmentFormat = 'cmaf' | 'smooth' | 'download';
export type WebhookResult = 'delivered' | 'retrying' | 'failed';

export interface JobCounts {
  queued: number;
  running: number;
  failed: number;
}

export interface LiveCounts {
  /** Live streams with a publisher now. */
  streams: number;
  /** Playback sessions of live streams now. */
  viewers: number;
}

export interface MetricsOptions {
  /** How long a scrape waits for each registered callback; default 2000 ms. */
  collectTimeoutMs?: number;
  /** Node's process metrics (CPU, memory, event loop lag, GC); default true. */
  defaultMetrics?: boolean;
}

const FORMATS: readonly SegmentFormat[] = ['cmaf', 'smooth', 'download'];
const WEBHOOK_RESULTS: readonly WebhookResult[] = ['delivered', 'retrying', 'failed'];
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const JOB_STATES: readonly (keyof JobCounts)[] = ['queued', 'running', 'failed'];

// From a cached segment (~100 µs) to a long-held request (a blocking LL-HLS playlist, a slow client): the
// interesting part for an origin is below a second, so the buckets are dense there.
const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
// Media seconds per wall second: below 1 an encode is slower than real time (a live ladder could not keep up).
const SPEED_BUCKETS = [0.25, 0.5, 1, 1.5, 2, 3, 5, 8, 12, 20, 35, 60, 100];

/** One on-scrape callback: its latest answer (null: none this scrape) and its call in flight, if any. */
class Collector<T> {
  readonly name: string;
  private readonly fn: () => Promise<T>;
  private inflight: Promise<T> | null = null;
  value: T | null = null;

  constructor(name: string, fn: () => Promise<T>) {
    this.name = name;
    this.fn = fn;
  }

  /** Refreshes `value`; the reason when it could not within `timeoutMs`. */
  async refresh(timeoutMs: number): Promise<'error' | 'timeout' | null> {
    this.value = null;
    if (!this.inflight) {
      const p = Promise.resolve().then(this.fn);
      this.inflight = p;
      const clear = () => {
        if (this.inflight === p) this.inflight = null;
      };
      p.then(clear, clear);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
      timer.unref();
    });
    try {
      const r = await Promise.race([this.inflight.then((v) => ({ v })), timeout]);
      if (r === 'timeout') return 'timeout';
      this.value = r.v;
      return null;
    } catch {
      return 'error';
    } finally {
      clearTimeout(timer);
    }
  }
}

export class Metrics {
  readonly registry: Registry;
  private readonly timeoutMs: number;
  private readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  private readonly httpDuration: Histogram<'route' | 'method'>;
  private readonly segBytes: Record<SegmentFormat, { inc(n: number): void }>;
  private readonly segRequests: Record<SegmentFormat, { inc(n: number): void }>;
  private readonly cacheHit: { inc(n?: number): void };
  private readonly cacheMiss: { inc(n?: number): void };
  private readonly encodeSpeed: Histogram;
  private readonly encodesFinished: Counter;
  private readonly encodesFailed: Counter<'code'>;
  private readonly uploadBytesTotal: Counter;
  private readonly webhookDeliveries: Record<WebhookResult, { inc(n: number): void }>;
  private readonly collectorFailures: Counter<'collector' | 'reason'>;
  private jobs: Collector<JobCounts> | null = null;
  private live: Collector<LiveCounts> | null = null;
  private scrape: Promise<void> | null = null;

  constructor(opts: MetricsOptions = {}) {
    this.timeoutMs = opts.collectTimeoutMs ?? 2000;
    this.registry = new Registry();
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: METRICS_PREFIX });
    const name = (n: string) => `${METRICS_PREFIX}${n}`;

    this.httpRequests = new Counter({
      name: name('http_requests_total'),
      help: 'HTTP requests answered, by route pattern ("(unmatched)": no route), method and status code',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: name('http_request_duration_seconds'),
      help: 'time from the request head to the end of the answer, by route pattern and method',
      labelNames: ['route', 'method'],
      buckets: HTTP_BUCKETS,
      registers,
    });

    const segBytes = new Counter({
      name: name('segment_bytes_total'),
      help: 'media bytes served (segments, init segments, fragments, progressive downloads), by format',
      labelNames: ['format'],
      registers,
    });
    const segRequests = new Counter({
      name: name('segment_requests_total'),
      help: 'media requests served (segments, init segments, fragments, progressive downloads), by format',
      labelNames: ['format'],
      registers,
    });
    // Bound children: the hot path skips label validation, and every format shows up at 0 from the start (rate()
    // needs the series to exist before its first increment).
    this.segBytes = bound(segBytes, FORMATS);
    this.segRequests = bound(segRequests, FORMATS);

    const cache = new Counter({
      name: name('index_cache_lookups_total'),
      help: 'rendition index cache lookups by result (hit ratio: see the PromQL in src/core/metrics.ts)',
      labelNames: ['result'],
      registers,
    });
    cache.inc({ result: 'hit' }, 0);
    cache.inc({ result: 'miss' }, 0);
    this.cacheHit = cache.labels('hit');
    this.cacheMiss = cache.labels('miss');

    const jobs = new Gauge({
      name: name('jobs'),
      help: 'encode jobs by state (read from the job queue on scrape)',
      labelNames: ['state'],
      registers,
      collect: () => {
        jobs.reset();
        const v = this.jobs?.value;
        if (v) for (const s of JOB_STATES) jobs.set({ state: s }, v[s]);
      },
    });
    const liveStreams = new Gauge({
      name: name('live_streams_active'),
      help: 'live streams with a publisher now (read on scrape)',
      registers,
      collect: () => {
        const v = this.live?.value;
        if (v) liveStreams.set(v.streams);
        else liveStreams.remove(); // reset() would leave a 0 that reads as a fresh answer
      },
    });
    const liveViewers = new Gauge({
      name: name('live_viewers'),
      help: 'playback sessions of live streams now (read on scrape)',
      registers,
      collect: () => {
        const v = this.live?.value;
        if (v) liveViewers.set(v.viewers);
        else liveViewers.remove();
      },
    });

    this.encodeSpeed = new Histogram({
      name: name('encode_speed_ratio'),
      help: 'media seconds encoded per wall-clock second, one observation per finished encode',
      buckets: SPEED_BUCKETS,
      registers,
    });
    this.encodesFinished = new Counter({ name: name('encodes_finished_total'), help: 'encodes finished', registers });
    this.encodesFailed = new Counter({
      name: name('encodes_failed_total'),
      help: 'encodes that failed, by error code',
      labelNames: ['code'],
      registers,
    });
    this.uploadBytesTotal = new Counter({
      name: name('upload_bytes_received_total'),
      help: 'upload body bytes received (tus PATCH bodies)',
      registers,
    });
    const webhooks = new Counter({
      name: name('webhook_deliveries_total'),
      help: 'webhook delivery attempts by result (retrying: failed, another attempt is due)',
      labelNames: ['result'],
      registers,
    });
    this.webhookDeliveries = bound(webhooks, WEBHOOK_RESULTS);
    this.collectorFailures = new Counter({
      name: name('metrics_collector_failures_total'),
      help: 'scrapes that went without a collector (reason: error, timeout); its gauges were left out of them',
      labelNames: ['collector', 'reason'],
      registers,
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** One answered request: `route` is the route pattern (never the raw URL), `seconds` its duration. */
  httpRequest(route: string, method: string, status: number, seconds: number): void {
    const m = METHODS.has(method) ? method : 'OTHER';
    this.httpRequests.inc({ route, method: m, status: String(status) });
    this.httpDuration.observe({ route, method: m }, seconds);
  }

  /**
   * Media bytes sent in `format`; counts `requests` requests (default one: call once per answer; a long download
   * counted as it goes passes 0 after its first call).
   */
  segmentBytes(format: SegmentFormat, bytes: number, requests = 1): void {
    const b = this.segBytes[format];
    if (!b) return;
    if (bytes > 0) b.inc(bytes);
    if (requests > 0) this.segRequests[format].inc(requests);
  }

  indexCacheLookup(hit: boolean): void {
    (hit ? this.cacheHit : this.cacheMiss).inc();
  }

  /** Jobs by state, asked on scrape (a database query: once per scrape, within the collect timeout). */
  setJobCounts(fn: () => Promise<JobCounts>): void {
    this.jobs = new Collector('jobs', fn);
  }

  /** Live streams active and their viewers, asked on scrape like setJobCounts. */
  setLiveCounts(fn: () => Promise<LiveCounts>): void {
    this.live = new Collector('live', fn);
  }

  /** An encode that finished: its speed is mediaSeconds / wallSeconds. */
  encodeFinished(mediaSeconds: number, wallSeconds: number): void {
    this.encodesFinished.inc();
    if (mediaSeconds > 0 && wallSeconds > 0) this.encodeSpeed.observe(mediaSeconds / wallSeconds);
  }

  /** An encode that failed, by its error code (codes outside the registry in errors.ts count as OTHER). */
  encodeFailed(code = 'OTHER'): void {
    this.encodesFailed.inc({ code: Object.hasOwn(ERRORS, code) ? code : 'OTHER' });
  }

  uploadBytes(bytes: number): void {
    if (bytes > 0) this.uploadBytesTotal.inc(bytes);
  }

  webhookDelivery(result: WebhookResult): void {
    this.webhookDeliveries[result]?.inc(1);
  }

  /** The exposition text of a scrape (serve it with `contentType`). */
  async text(): Promise<string> {
    if (!this.scrape) {
      const p = this.collect();
      this.scrape = p;
      p.finally(() => {
        if (this.scrape === p) this.scrape = null;
      }).catch(() => {});
    }
    await this.scrape;
    return this.registry.metrics();
  }

  private async collect(): Promise<void> {
    const all = [this.jobs, this.live].filter((c) => c !== null);
    await Promise.all(
      all.map(async (c) => {
        const failed = await c.refresh(this.timeoutMs);
        if (failed) this.collectorFailures.inc({ collector: c.name, reason: failed });
      }),
    );
  }
}

/** Per value of the counter's one label: a bound child, its series created at 0. */
function bound<K extends string>(counter: Counter<string>, values: readonly K[]): Record<K, { inc(n: number): void }> {
  const out = {} as Record<K, { inc(n: number): void }>;
  for (const v of values) {
    const child = counter.labels(v);
    child.inc(0);
    out[v] = child;
  }
  return out;
}

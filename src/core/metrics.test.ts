import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { Auth } from '../roles/api/auth.ts';
import { registerMetrics } from '../roles/http/metrics-route.ts';
import type { SqliteAccounts } from './db/accounts.ts';
import { Metrics } from './metrics.ts';

/** The value of one series in exposition text (`name{labels} value`), or undefined when it is absent. */
function value(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('Metrics', () => {
  it('has its own registry, with the default process metrics under smoothcast_', async () => {
    const a = new Metrics();
    const b = new Metrics({ defaultMetrics: false });
    a.uploadBytes(10);
    const ta = await a.text();
    const tb = await b.text();
    assert.equal(value(ta, 'smoothcast_upload_bytes_received_total'), 10);
    assert.equal(value(tb, 'smoothcast_upload_bytes_received_total'), 0);
    assert.match(ta, /^smoothcast_process_cpu_seconds_total /m);
    assert.match(ta, /^smoothcast_nodejs_eventloop_lag_seconds /m);
    assert.doesNotMatch(tb, /smoothcast_process_cpu/);
    assert.doesNotMatch(ta, /^process_cpu/m);
    assert.match(a.contentType, /^text\/plain; version=0\.0\.4/);
  });

  it('counts HTTP requests by route, method and status, with a duration histogram', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.httpRequest('/v/:id/master.m3u8', 'GET', 200, 0.003);
    m.httpRequest('/v/:id/master.m3u8', 'GET', 200, 0.2);
    m.httpRequest('/v/:id/master.m3u8', 'GET', 404, 0.001);
    m.httpRequest('(unmatched)', 'BREW', 404, 0.001);
    const t = await m.text();
    assert.equal(value(t, 'smoothcast_http_requests_total{route="/v/:id/master.m3u8",method="GET",status="200"}'), 2);
    assert.equal(value(t, 'smoothcast_http_requests_total{route="/v/:id/master.m3u8",method="GET",status="404"}'), 1);
    assert.equal(value(t, 'smoothcast_http_requests_total{route="(unmatched)",method="OTHER",status="404"}'), 1);
    const h = 'smoothcast_http_request_duration_seconds';
    assert.equal(value(t, `${h}_count{route="/v/:id/master.m3u8",method="GET"}`), 3);
    assert.equal(value(t, `${h}_bucket{le="0.005",route="/v/:id/master.m3u8",method="GET"}`), 2);
    assert.equal(value(t, `${h}_bucket{le="+Inf",route="/v/:id/master.m3u8",method="GET"}`), 3);
    assert.ok(Math.abs(value(t, `${h}_sum{route="/v/:id/master.m3u8",method="GET"}`)! - 0.204) < 1e-9);
  });

  it('counts segment bytes and requests by format, every format present from the start', async () => {
    const m = new Metrics({ defaultMetrics: false });
    let t = await m.text();
    for (const f of ['cmaf', 'smooth', 'download']) {
      assert.equal(value(t, `smoothcast_segment_bytes_total{format="${f}"}`), 0, f);
      assert.equal(value(t, `smoothcast_segment_requests_total{format="${f}"}`), 0, f);
    }
    m.segmentBytes('cmaf', 1000);
    m.segmentBytes('cmaf', 500);
    m.segmentBytes('download', 4096);
    m.segmentBytes('download', 4096, 0);
    t = await m.text();
    assert.equal(value(t, 'smoothcast_segment_bytes_total{format="cmaf"}'), 1500);
    assert.equal(value(t, 'smoothcast_segment_requests_total{format="cmaf"}'), 2);
    assert.equal(value(t, 'smoothcast_segment_bytes_total{format="download"}'), 8192);
    assert.equal(value(t, 'smoothcast_segment_requests_total{format="download"}'), 1);
    assert.equal(value(t, 'smoothcast_segment_bytes_total{format="smooth"}'), 0);
  });

  it('counts index cache lookups, encodes, uploads and webhook deliveries', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.indexCacheLookup(true);
    m.indexCacheLookup(true);
    m.indexCacheLookup(false);
    m.encodeFinished(60, 20);
    m.encodeFinished(10, 0); // counted, no speed
    m.encodeFailed('ENCODE_TIMEOUT');
    m.encodeFailed('made up');
    m.uploadBytes(123);
    m.uploadBytes(-5);
    m.webhookDelivery('delivered');
    m.webhookDelivery('retrying');
    m.webhookDelivery('retrying');
    const t = await m.text();
    assert.equal(value(t, 'smoothcast_index_cache_lookups_total{result="hit"}'), 2);
    assert.equal(value(t, 'smoothcast_index_cache_lookups_total{result="miss"}'), 1);
    assert.equal(value(t, 'smoothcast_encodes_finished_total'), 2);
    assert.equal(value(t, 'smoothcast_encode_speed_ratio_count'), 1);
    assert.equal(value(t, 'smoothcast_encode_speed_ratio_sum'), 3);
    assert.equal(value(t, 'smoothcast_encode_speed_ratio_bucket{le="2"}'), 0);
    assert.equal(value(t, 'smoothcast_encode_speed_ratio_bucket{le="3"}'), 1);
    assert.equal(value(t, 'smoothcast_encodes_failed_total{code="ENCODE_TIMEOUT"}'), 1);
    assert.equal(value(t, 'smoothcast_encodes_failed_total{code="OTHER"}'), 1);
    assert.equal(value(t, 'smoothcast_upload_bytes_received_total'), 123);
    assert.equal(value(t, 'smoothcast_webhook_deliveries_total{result="delivered"}'), 1);
    assert.equal(value(t, 'smoothcast_webhook_deliveries_total{result="retrying"}'), 2);
    assert.equal(value(t, 'smoothcast_webhook_deliveries_total{result="failed"}'), 0);
  });

  it('reads job and live counts once per scrape, concurrent scrapes sharing one call', async () => {
    const m = new Metrics({ defaultMetrics: false });
    let jobCalls = 0;
    let liveCalls = 0;
    m.setJobCounts(async () => {
      jobCalls++;
      await new Promise((r) => setTimeout(r, 20));
      return { queued: 3 + jobCalls, running: 1, failed: 0 };
    });
    m.setLiveCounts(async () => {
      liveCalls++;
      return { streams: 2, viewers: 17 };
    });
    const [a, b] = await Promise.all([m.text(), m.text()]);
    assert.equal(jobCalls, 1);
    assert.equal(liveCalls, 1, 'one callback feeds both live gauges');
    assert.equal(a, b);
    assert.equal(value(a, 'smoothcast_jobs{state="queued"}'), 4);
    assert.equal(value(a, 'smoothcast_jobs{state="running"}'), 1);
    assert.equal(value(a, 'smoothcast_jobs{state="failed"}'), 0);
    assert.equal(value(a, 'smoothcast_live_streams_active'), 2);
    assert.equal(value(a, 'smoothcast_live_viewers'), 17);
    const c = await m.text();
    assert.equal(jobCalls, 2);
    assert.equal(value(c, 'smoothcast_jobs{state="queued"}'), 5);
  });

  it('leaves out the gauges of a collector that throws or hangs, and the scrape still answers on time', async () => {
    const m = new Metrics({ defaultMetrics: false, collectTimeoutMs: 100 });
    let hangs = 0;
    let release: (v: { streams: number; viewers: number }) => void = () => {};
    m.setJobCounts(async () => {
      throw new Error('database is down');
    });
    m.setLiveCounts(() => {
      hangs++;
      return new Promise((resolve) => {
        release = resolve;
      });
    });
    m.uploadBytes(1);
    const t0 = performance.now();
    const t = await m.text();
    const ms = performance.now() - t0;
    assert.ok(ms >= 90 && ms < 1000, `${ms} ms`);
    assert.equal(value(t, 'smoothcast_upload_bytes_received_total'), 1);
    assert.equal(value(t, 'smoothcast_jobs{state="queued"}'), undefined);
    assert.equal(value(t, 'smoothcast_live_viewers'), undefined);
    assert.equal(value(t, 'smoothcast_metrics_collector_failures_total{collector="jobs",reason="error"}'), 1);
    assert.equal(value(t, 'smoothcast_metrics_collector_failures_total{collector="live",reason="timeout"}'), 1);
    // The hung call is waited on again, not called a second time; once it answers, its value is used.
    const next = m.text();
    setTimeout(() => release({ streams: 1, viewers: 5 }), 20);
    const t2 = await next;
    assert.equal(hangs, 1);
    assert.equal(value(t2, 'smoothcast_live_viewers'), 5);
    assert.equal(value(t2, 'smoothcast_metrics_collector_failures_total{collector="live",reason="timeout"}'), 1);
    assert.equal(value(t2, 'smoothcast_metrics_collector_failures_total{collector="jobs",reason="error"}'), 2);
  });
});

describe('registerMetrics', () => {
  async function app(token?: string) {
    const metrics = new Metrics({ defaultMetrics: false });
    const a = Fastify();
    registerMetrics(a, metrics, { token });
    a.get('/v/:id/master.m3u8', async () => '#EXTM3U\n');
    a.post('/api/assets', async (_req, reply) => reply.code(201).send({}));
    await a.ready();
    return { a, metrics };
  }

  it('counts by route pattern, never the raw URL; unmatched routes as (unmatched)', async () => {
    const { a, metrics } = await app();
    await a.inject('/v/abcdefgh/master.m3u8?token=secret');
    await a.inject('/v/zyxwvuts/master.m3u8');
    await a.inject({ method: 'HEAD', url: '/v/abcdefgh/master.m3u8' });
    await a.inject({ method: 'POST', url: '/api/assets', payload: {} });
    await a.inject('/nope/123');
    await a.inject('/nope/456');
    const res = await a.inject('/metrics');
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const t = res.body;
    assert.equal(value(t, 'smoothcast_http_requests_total{route="/v/:id/master.m3u8",method="GET",status="200"}'), 2);
    assert.equal(value(t, 'smoothcast_http_requests_total{route="/v/:id/master.m3u8",method="HEAD",status="200"}'), 1);
    assert.equal(value(t, 'smoothcast_http_requests_total{route="/api/assets",method="POST",status="201"}'), 1);
    assert.equal(value(t, 'smoothcast_http_requests_total{route="(unmatched)",method="GET",status="404"}'), 2);
    assert.doesNotMatch(t, /abcdefgh|zyxwvuts|secret|nope/);
    assert.equal(value(t, 'smoothcast_http_request_duration_seconds_count{route="(unmatched)",method="GET"}'), 2);
    // The scrape itself is counted when it has been answered, so the next one shows it.
    const again = (await a.inject('/metrics')).body;
    assert.equal(value(again, 'smoothcast_http_requests_total{route="/metrics",method="GET",status="200"}'), 1);
    await a.close();
    void metrics;
  });

  it('wants the bearer token when one is set', async () => {
    const { a } = await app('s3cret-metrics-token');
    const none = await a.inject('/metrics');
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().error.code, 'AUTH_REQUIRED');
    assert.match(none.headers['www-authenticate'] as string, /^Bearer/);
    const wrong = await a.inject({ url: '/metrics', headers: { authorization: 'Bearer s3cret-metrics-tokex' } });
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.json().error.code, 'AUTH_INVALID');
    const prefix = await a.inject({ url: '/metrics', headers: { authorization: 'Bearer s3cret' } });
    assert.equal(prefix.statusCode, 401);
    const ok = await a.inject({ url: '/metrics', headers: { authorization: 'Bearer s3cret-metrics-token' } });
    assert.equal(ok.statusCode, 200);
    assert.match(ok.body, /smoothcast_http_requests_total\{route="\/metrics",method="GET",status="401"\} 3/);
    await a.close();
  });

  it('passes the API auth layer: declared public, and a metrics token is not taken for an API token', async () => {
    // No database: the auth hook only asks whether the bearer secret is an API token (it is not).
    const asked: string[] = [];
    const accounts = {
      tokenBySecret: (s: string) => {
        asked.push(s);
        return null;
      },
      session: () => null,
      getUser: () => null,
    } as unknown as SqliteAccounts;
    const a = Fastify();
    try {
      const auth = new Auth(accounts);
      auth.register(a);
      registerMetrics(a, new Metrics({ defaultMetrics: false }), { token: `sc_${'A'.repeat(43)}` });
      await a.ready();
      assert.ok(auth.routes.some((r) => r.url === '/metrics' && r.method === 'GET' && r.access === 'public'));
      const ok = await a.inject({ url: '/metrics', headers: { authorization: `Bearer sc_${'A'.repeat(43)}` } });
      assert.equal(ok.statusCode, 200);
      assert.equal((await a.inject('/metrics')).statusCode, 401);
      assert.equal(asked.length, 1);
    } finally {
      await a.close();
    }
  });
});

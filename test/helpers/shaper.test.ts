// The QoE lab's shaping proxy (bench/shaper.ts) against a real upstream HTTP server on port 0 and a real HTTP
// client: the delivered rate follows the trace (constant, a step, an outage), the round trip holds the headers back,
// one session's parallel requests share its rate, and what is not media passes unshaped. The cases run
// concurrently (each has its own upstream and proxy), so the file takes about as long as its longest case (~5 s).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  bitsBetween,
  bodyServer,
  bytesWithin,
  constantTrace,
  isShaped,
  loadTraceFolder,
  parseTrace,
  rateAt,
  renditionOf,
  startShaper,
  type Trace,
  timedGet,
} from '../../bench/shaper.ts';

const SEG = '/v/asset/r1/v0/1.m4s';
const mbit = (bytes: number, seconds: number) => (bytes * 8) / seconds / 1e6;

/** A shaper over a body server answering `bytes` per request; closes both after `fn`. */
async function withShaper<T>(
  trace: Trace,
  bytes: number,
  fn: (url: string, s: Awaited<ReturnType<typeof startShaper>>) => Promise<T>,
  rttMs?: number,
): Promise<T> {
  const up = await bodyServer(bytes);
  const s = await startShaper({ upstream: up.url, trace, ...(rttMs === undefined ? {} : { rttMs }) });
  try {
    return await fn(s.url, s);
  } finally {
    await s.close();
    await up.close();
  }
}

describe('shaper', { concurrency: true }, () => {
  it('parses traces, rejects malformed ones, and loads a folder', () => {
    const t = parseTrace('0.0\t4\n2.0\t1\n# comment\n\n5\t0\n', 'x');
    assert.deepEqual(t.samples, [
      { t: 0, mbps: 4 },
      { t: 2, mbps: 1 },
      { t: 5, mbps: 0 },
    ]);
    assert.equal(t.duration, 8);
    assert.equal(rateAt(t, 1.99), 4e6);
    assert.equal(rateAt(t, 2), 1e6);
    assert.equal(rateAt(t, 6), 0);
    assert.equal(rateAt(t, 8.5), 4e6, 'loops');
    assert.equal(bitsBetween(t, 1, 3), 5e6);
    assert.equal(bitsBetween(t, 7, 9), 4e6, 'across the loop');
    assert.throws(() => parseTrace('0\t1\n1\tabc\n', 'bad'), /bad:2: not two numbers/);
    assert.throws(() => parseTrace('0\t1\n1\t2\t3\n', 'bad'), /bad:2: expected "seconds<TAB>Mbit\/s"/);
    assert.throws(() => parseTrace('0\t1\n1\t2\n1\t3\n', 'bad'), /bad:3: time 1 s does not increase/);
    assert.throws(() => parseTrace('0\t-1\n', 'bad'), /negative rate/);
    assert.throws(() => parseTrace('1\t1\n', 'bad'), /first sample must be at 0 s/);
    assert.throws(() => parseTrace('# nothing\n', 'bad'), /no samples/);
    const dir = mkdtempSync(join(tmpdir(), 'sc-traces-'));
    writeFileSync(join(dir, 'b.tsv'), '0\t1\n1\t2\n');
    writeFileSync(join(dir, 'a.tsv'), '0\t3\n');
    writeFileSync(join(dir, 'notes.txt'), 'not a trace');
    assert.deepEqual(
      loadTraceFolder(dir).map((x) => x.name),
      ['a', 'b'],
    );
    const shared = fileURLToPath(new URL('../../../shared/traces/', import.meta.url));
    try {
      for (const tr of loadTraceFolder(shared)) assert.ok(tr.duration > 200 && tr.samples.length > 100, tr.name);
    } catch (e) {
      if (!String(e).includes('ENOENT')) throw e;
    }
  });

  it('shapes media only and knows the rendition of a path', () => {
    assert.ok(isShaped('/v/abc/manifest.mpd'));
    assert.ok(isShaped('/v/abc/master.m3u8'));
    assert.ok(isShaped('/v/abc/r1/v0.m3u8'));
    assert.ok(isShaped(SEG));
    assert.ok(!isShaped('/v/abc/player.json'));
    assert.ok(!isShaped('/v/abc/poster.jpg'));
    assert.ok(!isShaped('/api/assets/abc'));
    assert.ok(!isShaped('/watch/abc'));
    assert.equal(renditionOf('/v/abc/r1/v2/17.m4s'), 'v2');
    assert.equal(renditionOf('/v/abc/r1/a0/init.mp4'), 'a0');
    assert.equal(renditionOf('/v/abc/r1/v1.m3u8'), 'v1');
    assert.equal(renditionOf('/v/abc/manifest.mpd'), null);
  });

  it('delivers a constant 2 Mbit/s within 5 % over 5 s', async () => {
    await withShaper(constantTrace(2), 1.3e6, async (url, s) => {
      const r = await timedGet(url + SEG);
      assert.equal(r.status, 200);
      const first = r.chunks[0]!.at;
      const got = mbit(bytesWithin(r.chunks, first, first + 5000), 5);
      assert.ok(Math.abs(got / 2 - 1) < 0.05, `${got.toFixed(3)} Mbit/s`);
      assert.equal(s.stats().shapedBytes, 1.3e6);
      assert.equal(s.stats().byRendition.v0, 1.3e6);
      assert.equal(s.stats().byPath[SEG]?.requests, 1);
    });
  });

  it('follows a step from 4 to 1 Mbit/s', async () => {
    const trace = parseTrace('0\t4\n2\t1\n5\t1\n', 'step');
    await withShaper(trace, 1.3e6, async (url, s) => {
      s.start();
      const r = await timedGet(url + SEG);
      const t0 = s.stats().startedAt!;
      const before = mbit(bytesWithin(r.chunks, t0 + 300, t0 + 1900), 1.6);
      const after = mbit(bytesWithin(r.chunks, t0 + 2100, t0 + 4100), 2);
      assert.ok(Math.abs(before / 4 - 1) < 0.07, `before the step: ${before.toFixed(3)} Mbit/s`);
      assert.ok(Math.abs(after / 1 - 1) < 0.07, `after the step: ${after.toFixed(3)} Mbit/s`);
    });
  });

  it('delivers nothing during an outage', async () => {
    const trace = parseTrace('0\t2\n1\t0\n3\t2\n4\t2\n', 'outage');
    await withShaper(trace, 0.45e6, async (url, s) => {
      s.start();
      const r = await timedGet(url + SEG);
      const t0 = s.stats().startedAt!;
      assert.ok(bytesWithin(r.chunks, t0 + 200, t0 + 1000) > 150_000, 'flows before');
      assert.equal(bytesWithin(r.chunks, t0 + 1030, t0 + 2990), 0, 'nothing in the outage');
      assert.ok(bytesWithin(r.chunks, t0 + 3000, t0 + 3600) > 100_000, 'flows again after');
    });
  });

  it('holds the headers back by the round trip; unshaped paths have none', async () => {
    await withShaper(
      constantTrace(10),
      1000,
      async (url) => {
        const a = await timedGet(url + SEG, { range: 'bytes=0-99' });
        const ttfb = a.headersAt - a.sentAt;
        assert.ok(ttfb >= 200 && ttfb < 300, `media: ${ttfb.toFixed(0)} ms`);
        const b = await timedGet(`${url}/api/assets/x`);
        const direct = b.headersAt - b.sentAt;
        assert.ok(direct < 50, `unshaped: ${direct.toFixed(0)} ms`);
      },
      200,
    );
    await withShaper(constantTrace(10), 1000, async (url) => {
      const a = await timedGet(url + SEG);
      const ttfb = a.headersAt - a.sentAt;
      assert.ok(ttfb >= 80 && ttfb < 160, `default 80 ms: ${ttfb.toFixed(0)} ms`);
    });
  });

  it('passes request and response headers through', async () => {
    await withShaper(constantTrace(10), 1000, async (url) => {
      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        request(`${url}${SEG}`, { headers: { range: 'bytes=5-9' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.headers));
        })
          .on('error', reject)
          .end();
      });
      assert.equal(headers['x-upstream-range'], 'bytes=5-9');
      assert.equal(headers['access-control-allow-origin'], '*');
    });
  });

  it('shares one session rate between two concurrent requests', async () => {
    await withShaper(constantTrace(2), 0.55e6, async (url, s) => {
      s.start();
      const [a, b] = await Promise.all([timedGet(url + SEG), timedGet(`${url}/v/asset/r1/a0/1.m4s`)]);
      const t0 = s.stats().startedAt!;
      const from = t0 + 200;
      const to = t0 + 3200;
      const ra = mbit(bytesWithin(a.chunks, from, to), 3);
      const rb = mbit(bytesWithin(b.chunks, from, to), 3);
      assert.ok(Math.abs((ra + rb) / 2 - 1) < 0.05, `together ${(ra + rb).toFixed(3)} Mbit/s`);
      assert.ok(Math.abs(ra - rb) < 0.15, `each about half: ${ra.toFixed(3)} and ${rb.toFixed(3)} Mbit/s`);
      assert.deepEqual(s.stats().byRendition, { v0: 0.55e6, a0: 0.55e6 });
    });
  });

  it('stops an aborted request and answers 502 when the upstream is down', async () => {
    await withShaper(constantTrace(1), 5e6, async (url, s) => {
      await new Promise<void>((resolve) => {
        const req = request(url + SEG, (res) => {
          res.once('data', () => {
            req.destroy();
            setTimeout(resolve, 100);
          });
        });
        req.on('error', () => {});
        req.end();
      });
      const st = s.stats();
      assert.equal(st.aborted, 1);
      assert.ok(st.shapedBytes < 100_000, `stopped sending: ${st.shapedBytes} B`);
    });
    const s = await startShaper({ upstream: 'http://127.0.0.1:1', trace: constantTrace(10) });
    try {
      const r = await timedGet(s.url + SEG);
      assert.equal(r.status, 502);
      assert.equal((await timedGet(`${s.url}/api/x`)).status, 502);
    } finally {
      await s.close();
    }
  });
});

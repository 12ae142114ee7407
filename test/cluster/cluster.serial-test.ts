// The scale-out topology on one box: PostgreSQL, Swift (S3), 2 `api,upload` processes, 2 `worker`, 2 `origin`, a
// `live` node and the nginx edge in front of the origins — every role its own OS process, as separate machines
// would run them. Faults are real: SIGKILL mid-PATCH, SIGKILL and SIGSTOP of the worker that is encoding.
// A .serial-test.ts: `npm test` runs it alone after the parallel suite — a dozen processes, encodes and 200 viewers
// would starve the real-time live tests running beside it on a 2-core box.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Browser } from 'playwright-core';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { runViewers } from '../../src/tools/viewers.ts';
import { type Lab, startLab } from '../browser/lab-server.ts';
import { launchChromium } from '../helpers/browser.ts';
import { type Cluster, type ClusterNode, startCluster } from '../helpers/cluster.ts';
import { createStream, liveAction, publish } from '../helpers/live.ts';
import { startNginxWithConfig } from '../helpers/nginx.ts';
import { cli, freePort, until } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';

const TUS = { 'tus-resumable': '1.0.0' };

describe('cluster: PostgreSQL + S3 + roles as processes + the edge', { timeout: 600_000 }, () => {
  let c: Cluster;
  let api: ClusterNode[];
  let workers: ClusterNode[];
  let origins: ClusterNode[];
  let edge: { url: string; stop(): Promise<void> };
  let work: string;
  const auth = () => ({ authorization: `Bearer ${c.token}` });

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'sc-cluster-'));
    // Short leases so a dead worker's job is retaken within seconds.
    c = await startCluster({ SMOOTHCAST_WORKER_LEASE_SECONDS: '6' });
    api = [await c.start('api,upload,web'), await c.start('api,upload,web')];
    workers = [await c.start('worker'), await c.start('worker')];
    origins = [await c.start('origin'), await c.start('origin')];
    const port = await freePort();
    const conf = await cli([
      'edge-config',
      ...origins.flatMap((o) => ['--origin', o.url]),
      '--listen',
      String(port),
      '--listen-address',
      '127.0.0.1',
      '--cache-dir',
      join(work, 'edge', 'cache'),
      ...(process.getuid?.() === 0 ? ['--user', 'root'] : []),
    ]);
    mkdirSync(join(work, 'edge'), { recursive: true });
    writeFileSync(join(work, 'edge', 'nginx.conf'), conf.stdout);
    const nginx = await startNginxWithConfig(join(work, 'edge', 'nginx.conf'), `http://127.0.0.1:${port}/healthz`);
    edge = { url: `http://127.0.0.1:${port}`, stop: () => nginx.stop() };
  });

  after(async () => {
    await edge?.stop();
    await c?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** A tus upload of `data`, PATCH by PATCH, to the given upload processes in turn. */
  async function createUpload(node: ClusterNode, size: number, name: string): Promise<string> {
    const r = await fetch(`${node.url}/api/uploads`, {
      method: 'POST',
      headers: {
        ...TUS,
        ...auth(),
        'upload-length': String(size),
        'upload-metadata': `filename ${Buffer.from(name).toString('base64')}`,
      },
    });
    assert.equal(r.status, 201, await r.text());
    const loc = r.headers.get('location')!;
    return loc.split('/').pop()!;
  }

  const offsetOf = async (node: ClusterNode, id: string) => {
    const r = await fetch(`${node.url}/api/uploads/${id}`, { method: 'HEAD', headers: { ...TUS, ...auth() } });
    return { status: r.status, offset: Number(r.headers.get('upload-offset')) };
  };

  const patch = (node: ClusterNode, id: string, offset: number, body: Uint8Array | ReadableStream) =>
    fetch(`${node.url}/api/uploads/${id}`, {
      method: 'PATCH',
      headers: {
        ...TUS,
        ...auth(),
        'upload-offset': String(offset),
        'content-type': 'application/offset+octet-stream',
      },
      body,
      duplex: 'half',
    } as RequestInit);

  it('a 50 MiB upload in 1 MiB PATCHes alternating between two upload processes survives a SIGKILL mid-PATCH', async () => {
    const MiB = 2 ** 20;
    const data = randomBytes(50 * MiB);
    const sha = createHash('sha256').update(data).digest('hex');
    // A third upload process that will be killed mid-PATCH; the others carry on.
    const doomed = await c.start('upload');
    const nodes = [api[0]!, doomed, api[1]!];
    const id = await createUpload(api[0]!, data.length, 'big.bin');
    let offset = 0;
    let n = 0;
    let killed = false;
    while (offset < data.length) {
      const node: ClusterNode = killed ? nodes[n % 2 === 0 ? 0 : 2]! : nodes[n % 3]!;
      n++;
      if (!killed && node === doomed && offset >= 20 * MiB) {
        // Half a PATCH, then the process dies with the request open.
        let sent = false;
        const body = new ReadableStream({
          pull(ctl) {
            if (!sent) {
              ctl.enqueue(data.subarray(offset, offset + MiB / 2));
              sent = true;
            }
          },
        });
        const pending = patch(node, id, offset, body).catch(() => null);
        await new Promise((r) => setTimeout(r, 300));
        doomed.proc.kill('SIGKILL');
        await doomed.exited;
        await pending;
        killed = true;
        // The offset is what reached the bucket; the dead process's lock lapses (DbLocker: 10 s), meanwhile 423.
        const other = nodes[0]!;
        const head = await until('offset after the kill', async () => {
          const h = await offsetOf(other, id);
          return h.status === 200 ? h : undefined;
        });
        offset = head.offset;
        continue;
      }
      const end = Math.min(data.length, offset + MiB);
      const r = await patch(node, id, offset, data.subarray(offset, end));
      if (r.status === 423) {
        await r.body?.cancel();
        await new Promise((res) => setTimeout(res, 500));
        continue;
      }
      assert.equal(r.status, 204, `PATCH at ${offset} to ${node.roles}: ${r.status} ${await r.text()}`);
      offset = Number(r.headers.get('upload-offset'));
      assert.equal(offset, end);
    }
    assert.ok(killed, 'the doomed process was killed mid-upload');
    // The upload became an asset whose source in the bucket is the bytes sent.
    const assetId = await until('upload → asset', async () => {
      const r = await fetch(`${api[1]!.url}/api/uploads/${id}/asset`, { headers: auth() });
      return r.ok ? ((await r.json()) as AssetJson).id : undefined;
    });
    const s3 = c.s3Client();
    const obj = await s3.send(new GetObjectCommand({ Bucket: c.s3.bucket, Key: `assets/${assetId}/source.bin` }));
    const got = Buffer.from(await obj.Body!.transformToByteArray());
    assert.equal(createHash('sha256').update(got).digest('hex'), sha);
    s3.destroy();
    // Not media: the encode fails cleanly and the asset says why.
    const failed = await until('not media → failed', async () => {
      const a = (await (await fetch(`${api[0]!.url}/api/assets/${assetId}`, { headers: auth() })).json()) as AssetJson;
      return a.status === 'failed' ? a : undefined;
    });
    assert.ok(failed.error?.code);
  });

  it('two concurrent PATCHes on one upload, on two processes: one is refused', async () => {
    const size = 4 * 2 ** 20;
    const id = await createUpload(api[0]!, size, 'race.bin');
    const chunk = randomBytes(size);
    // A slow body keeps the first PATCH (and its lock) open while the second arrives at the other process.
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let step = 0;
    const slow = new ReadableStream({
      async pull(ctl) {
        if (step === 0) ctl.enqueue(chunk.subarray(0, 2 ** 20));
        else if (step === 1) {
          await gate;
          ctl.enqueue(chunk.subarray(2 ** 20));
        } else ctl.close();
        step++;
      },
    });
    const first = patch(api[0]!, id, 0, slow);
    await new Promise((r) => setTimeout(r, 500));
    const second = await patch(api[1]!, id, 0, chunk);
    assert.ok([409, 423].includes(second.status), `second PATCH: ${second.status}`);
    await second.body?.cancel();
    release();
    const r1 = await first;
    assert.equal(r1.status, 204);
    assert.equal(Number(r1.headers.get('upload-offset')), size);
  });

  let playable: AssetJson;
  let fenced = '';

  it('SIGKILL of the encoding worker: the other takes the job after its lease; ready, no duplicate renditions', async () => {
    const src = await h264Clip({ seconds: 16, width: 1280, height: 720 });
    const id = await createUpload(api[0]!, readFileSync(src).length, 'clip.mp4');
    const r = await patch(api[1]!, id, 0, readFileSync(src));
    assert.equal(r.status, 204);
    const assetId = r.headers.get('smoothcast-asset')!;
    // Whichever worker took it: find it by its log, kill it while it encodes.
    const running = await until('a worker encoding', () =>
      workers.find((w) => w.lines.some((l) => l.includes('"encode start"') && l.includes(assetId))),
    );
    running.proc.kill('SIGKILL');
    await running.exited;
    const survivor = workers.find((w) => w !== running)!;
    const ready = await until(
      'ready on the other worker',
      async () => {
        const a = (await (
          await fetch(`${api[0]!.url}/api/assets/${assetId}`, { headers: auth() })
        ).json()) as AssetJson;
        if (a.status === 'failed') throw new Error(`failed: ${JSON.stringify(a.error)}`);
        return a.status === 'ready' ? a : undefined;
      },
      240_000,
    );
    assert.ok(survivor.lines.some((l) => l.includes('"encode ready"') && l.includes(assetId)));
    const ids = ready.renditions.map((x) => x.id);
    assert.deepEqual(ids, [...new Set(ids)], 'no duplicate renditions');
    playable = ready;
    // Replace the dead worker for what follows.
    workers = [survivor, await c.start('worker')];
  });

  it('publish while encoding on S3: an origin serves the first segments from the worker before the upload', async () => {
    const src = await h264Clip({ seconds: 40, width: 1280, height: 720 });
    const id = await createUpload(api[0]!, readFileSync(src).length, 'early.mp4');
    const started = Date.now();
    const r = await patch(api[0]!, id, 0, readFileSync(src));
    const assetId = r.headers.get('smoothcast-asset')!;
    const early = await until(
      'playable while processing',
      async () => {
        const a = (await (
          await fetch(`${api[0]!.url}/api/assets/${assetId}`, { headers: auth() })
        ).json()) as AssetJson;
        if (a.status === 'ready') throw new Error('ready before it was seen playable: source too short for this box');
        return a.playable ? a : undefined;
      },
      120_000,
    );
    assert.equal(early.status, 'processing');
    // Through an origin that is not the worker: the playlist and the first segment come from the worker's scratch.
    const master = await fetch(`${origins[1]!.url}/v/${assetId}/master.m3u8`);
    assert.equal(master.status, 200);
    const media = (await master.text()).split('\n').find((l) => l && !l.startsWith('#'))!;
    const playlistUrl = new URL(media, `${origins[1]!.url}/v/${assetId}/master.m3u8`);
    const playlist = await (await fetch(playlistUrl)).text();
    const first = playlist.split('\n').find((l) => l && !l.startsWith('#'))!;
    const seg = await fetch(new URL(first, playlistUrl));
    assert.equal(seg.status, 200);
    const bytes = Buffer.from(await seg.arrayBuffer());
    assert.ok(bytes.includes(Buffer.from('moof')) && bytes.includes(Buffer.from('mdat')), 'a CMAF segment');
    const stillProcessing = (await (
      await fetch(`${api[0]!.url}/api/assets/${assetId}`, { headers: auth() })
    ).json()) as AssetJson;
    assert.equal(stillProcessing.status, 'processing', 'served before the upload to the bucket');
    // Then ready from the bucket, same URL, same bytes.
    await until(
      'ready',
      async () => {
        const a = (await (
          await fetch(`${api[0]!.url}/api/assets/${assetId}`, { headers: auth() })
        ).json()) as AssetJson;
        return a.status === 'ready' ? a : undefined;
      },
      240_000,
    );
    const again = await until('the same segment from the bucket', async () => {
      const x = await fetch(new URL(first, playlistUrl));
      return x.status === 200 ? Buffer.from(await x.arrayBuffer()) : undefined;
    });
    assert.deepEqual(again, bytes);
    assert.ok(Date.now() - started < 240_000);
  });

  it('a worker paused past its lease comes back to find its completion refused (fencing)', async () => {
    const src = await h264Clip({ seconds: 12, width: 640, height: 360 });
    const id = await createUpload(api[1]!, readFileSync(src).length, 'fenced.mp4');
    const r = await patch(api[1]!, id, 0, readFileSync(src));
    const assetId = r.headers.get('smoothcast-asset')!;
    const running = await until('a worker encoding', () =>
      workers.find((w) => w.lines.some((l) => l.includes('"encode start"') && l.includes(assetId))),
    );
    running.proc.kill('SIGSTOP');
    const other = workers.find((w) => w !== running)!;
    await until(
      'the other worker finishes the job',
      () => (other.lines.some((l) => l.includes('"encode ready"') && l.includes(assetId)) ? true : undefined),
      240_000,
    );
    running.proc.kill('SIGCONT');
    // Back from the pause, its heartbeat, completion or publish is refused: it writes nothing.
    await until(
      'the late worker is refused',
      () =>
        running.lines.some(
          (l) => /lease lost|completion refused|no longer this worker/.test(l) && l.includes(String('')),
        ) || undefined,
      120_000,
    );
    const a = (await (await fetch(`${api[0]!.url}/api/assets/${assetId}`, { headers: auth() })).json()) as AssetJson;
    assert.equal(a.status, 'ready');
    fenced = assetId;
  });

  describe('playback through the edge', () => {
    let browser: Browser;
    let lab: Lab;
    before(async () => {
      browser = await launchChromium();
      lab = await startLab('lab', 'lab.js');
    });
    after(async () => {
      await browser?.close();
      await lab?.close();
    });

    async function plays(player: string, url: string) {
      const page = await browser.newPage();
      try {
        await page.goto(`${lab.url}/lab.html?player=${player}&url=${encodeURIComponent(url)}`);
        await page.waitForFunction('document.querySelector("video").currentTime >= 3', null, { timeout: 60_000 });
        const errors = (await page.evaluate('window.lab ? window.lab.errors : []')) as string[];
        assert.deepEqual(errors, []);
      } finally {
        await page.close();
      }
    }

    it('the VOD asset plays through the edge in hls.js and dash.js', async () => {
      await plays('hls.js', `${edge.url}/v/${playable.id}/master.m3u8`);
      await plays('dash.js', `${edge.url}/v/${playable.id}/manifest.mpd`);
    });

    /** Per segment URL: how many edge answers of each cache status (from the edge's access log). */
    function edgeLog(assetId: string) {
      const perUrl = new Map<string, Record<string, number>>();
      let segments = 0;
      let hits = 0;
      for (const line of readFileSync(join(work, 'edge', 'access.log'), 'utf8').split('\n')) {
        const m = /"GET (\S+)\?\S* (\d{3}) .* cache=(\S+)/.exec(line);
        if (!m || !m[1]!.includes(`/v/${assetId}/`) || !/\.m4s$/.test(m[1]!)) continue;
        segments++;
        if (m[3] === 'HIT') hits++;
        const c = perUrl.get(m[1]!) ?? {};
        c[m[3]!] = (c[m[3]!] ?? 0) + 1;
        perUrl.set(m[1]!, c);
      }
      return { perUrl, segments, hits };
    }

    it('200 virtual viewers through the edge for 60 s: no error, each segment from the origins once, ≥ 99 % hits', async () => {
      const report = await runViewers({
        url: `${edge.url}/v/${playable.id}/master.m3u8`,
        count: 200,
        durationSeconds: 60,
        pick: 'all-rungs',
        startSpreadSeconds: 5,
      });
      assert.equal(report.errors.total, 0, JSON.stringify(report.errors));
      assert.ok(report.segments > 1000, `segments fetched: ${report.segments}`);
      await new Promise((r) => setTimeout(r, 2500)); // the access log is flushed every second
      const log = edgeLog(playable.id);
      for (const [url, c] of log.perUrl) {
        const fetched = (c.MISS ?? 0) + (c.EXPIRED ?? 0) + (c.BYPASS ?? 0) + (c.UPDATING ?? 0);
        assert.ok(fetched <= 1, `${url} fetched from the origins ${fetched} times: ${JSON.stringify(c)}`);
      }
      assert.ok(log.hits / log.segments >= 0.99, `hit ratio ${log.hits}/${log.segments}`);
      // Byte-identical to the origin's answer.
      for (const url of [...log.perUrl.keys()].slice(0, 5)) {
        const [a, b] = await Promise.all([fetch(edge.url + url), fetch(origins[1]!.url + url)]);
        assert.deepEqual(Buffer.from(await a.arrayBuffer()), Buffer.from(await b.arrayBuffer()), url);
      }
    });

    it('killing one of the two origins mid-run keeps the viewers’ error rate under 1 %', async () => {
      const run = runViewers({
        url: `${edge.url}/v/${fenced}/master.m3u8`,
        count: 200,
        durationSeconds: 30,
        pick: 'all-rungs',
        startSpreadSeconds: 3,
      });
      await new Promise((r) => setTimeout(r, 10_000));
      origins[0]!.proc.kill('SIGKILL');
      const report = await run;
      const rate = report.errors.total / report.requests.total;
      assert.ok(report.requests.total > 1000, `requests: ${report.requests.total}`);
      assert.ok(rate < 0.01, `error rate ${(rate * 100).toFixed(2)} %: ${JSON.stringify(report.errors)}`);
    });

    it('a live event pushed to the live node plays through the edge, and from S3 after shutdown', async () => {
      // Live control (start/stop/shutdown) goes to the node that runs the live role: it runs the API too.
      const rtmpPort = await freePort();
      const liveNode = await c.start('live,api', { SMOOTHCAST_LIVE_RTMP_PORT: String(rtmpPort) });
      const server = { url: liveNode.url, auth: auth() };
      const stream = await createStream(server, { title: 'cluster live', dvrWindowSeconds: 60 });
      const rtmp = `rtmp://127.0.0.1:${rtmpPort}/live/${stream.streamKey}`;
      const pub = publish(rtmp, { seconds: 40, size: '640x360' });
      try {
        const event = await until(
          'live event playable',
          async () => {
            const s = (await (await fetch(`${liveNode.url}/api/live/${stream.id}`, { headers: auth() })).json()) as {
              currentAssetId?: string | null;
            };
            if (!s.currentAssetId) return undefined;
            const a = (await (
              await fetch(`${api[0]!.url}/api/assets/${s.currentAssetId}`, { headers: auth() })
            ).json()) as AssetJson;
            return a.playable ? a : undefined;
          },
          60_000,
        );
        await plays('hls.js', `${edge.url}/v/${event.id}/master.m3u8`);
        // What a viewer gets from the edge is never more than two parts behind what the origin has.
        const master = await (await fetch(`${edge.url}/v/${event.id}/master.m3u8`)).text();
        const mediaUri = master.split('\n').find((l) => l && !l.startsWith('#'))!;
        const mediaPath = `/v/${event.id}/${mediaUri}`;
        const parts = (text: string) => [...text.matchAll(/#EXT-X-PART:.*URI="([^"]+)"/g)].map((m) => m[1]!);
        for (let i = 0; i < 10; i++) {
          const [e, o] = await Promise.all([fetch(edge.url + mediaPath), fetch(origins[1]!.url + mediaPath)]);
          const [ep, op] = [parts(await e.text()), parts(await o.text())];
          const last = ep.at(-1);
          assert.ok(last, 'the edge playlist lists parts');
          const behind = op.length - 1 - op.lastIndexOf(last);
          assert.ok(op.includes(last) && behind <= 2, `edge playlist ${behind} parts behind the origin's`);
          await new Promise((r) => setTimeout(r, 300));
        }
        // Parts and segments through the edge are fetched from the origins once each.
        await runViewers({ url: `${edge.url}/v/${event.id}/master.m3u8`, count: 20, durationSeconds: 8 });
        await new Promise((r) => setTimeout(r, 2500));
        for (const [url, c] of edgeLog(event.id).perUrl) {
          const fetched = (c.MISS ?? 0) + (c.EXPIRED ?? 0) + (c.UPDATING ?? 0);
          assert.ok(fetched <= 1, `${url} fetched from the origins ${fetched} times: ${JSON.stringify(c)}`);
        }
        await liveAction(server, stream.id, 'shutdown');
        await until(
          'archive uploaded to S3',
          () =>
            liveNode.lines.some((l) => l.includes('live archive uploaded') && l.includes(event.id)) ? true : undefined,
          120_000,
        );
        // The live node is gone: the archive plays from the bucket, same URL.
        await liveNode.stop();
        await plays('hls.js', `${origins[1]!.url}/v/${event.id}/master.m3u8`);
        await plays('dash.js', `${edge.url}/v/${event.id}/manifest.mpd`);
      } finally {
        pub.child.kill('SIGKILL');
      }
    });
  });
});

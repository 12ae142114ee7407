// The Server-Sent Events stream of an asset (GET /api/assets/:id/events), read as a browser's EventSource would:
// the asset as JSON at once and after every change, ending with ready (or `deleted`), then the server closes it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { cli, startTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';

interface SseEvent {
  event: string;
  data: string;
  id: string | null;
}

/** Splits an event stream into events (HTML Living Standard §9.2.6): blank-line separated fields; comments skipped. */
async function* readEvents(res: Response): AsyncGenerator<SseEvent> {
  assert.ok(res.body);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value.replace(/\r\n?/g, '\n');
      for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let event = 'message';
        let id: string | null = null;
        const data: string[] = [];
        let fields = 0;
        for (const line of block.split('\n')) {
          if (line === '' || line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const name = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (name === 'event') event = value;
          else if (name === 'data') data.push(value);
          else if (name === 'id') id = value;
          else if (name !== 'retry') continue;
          fields++;
        }
        if (data.length > 0) yield { event, data: data.join('\n'), id };
        else assert.ok(fields <= 1, `a block with fields but no data: ${JSON.stringify(block)}`);
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/** Opens the stream of an asset (bounded by a deadline) and checks its response headers. */
async function openEvents(p: TestPlatform, id: string, timeoutMs: number): Promise<Response> {
  const res = await p.api(`/api/assets/${id}/events`, { signal: AbortSignal.timeout(timeoutMs) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  return res;
}

async function importNoWait(p: TestPlatform, file: string): Promise<string> {
  const r = await cli(['import', '--data', p.dataDir, '--json', '--no-wait', file]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as AssetJson).id;
}

describe('asset events (SSE)', () => {
  let p: TestPlatform;
  let source: string;

  before(async () => {
    p = await startTestPlatform();
    // Long enough that the encode spans several progress updates (written every 500 ms) and SSE polls (250 ms).
    source = await h264Clip({ seconds: 30, width: 640, height: 360 });
  });

  after(async () => {
    await p?.stop();
  });

  it('follows an import from queued through processing to ready, then the server closes the stream', async () => {
    const id = await importNoWait(p, source);
    const res = await openEvents(p, id, 180_000);
    const seen: AssetJson[] = [];
    for await (const e of readEvents(res)) {
      assert.equal(e.event, 'asset', `unexpected event ${e.event}: ${e.data}`);
      const a = JSON.parse(e.data) as AssetJson;
      assert.equal(a.id, id);
      // The event id is the change time, so a reconnecting EventSource (Last-Event-ID) can tell where it was.
      assert.equal(Number(e.id), Date.parse(a.updatedAt), 'id: is updatedAt in ms');
      assert.notEqual(a.status, 'failed', JSON.stringify(a.error));
      seen.push(a);
    }
    // The loop ended: the server closed the stream after the final state (a client-side abort would have thrown).
    assert.ok(seen.length >= 3, `events: ${seen.map((a) => a.status).join(', ')}`);
    for (let i = 1; i < seen.length; i++) {
      const [prev, cur] = [seen[i - 1]!, seen[i]!];
      assert.ok(Date.parse(cur.updatedAt) > Date.parse(prev.updatedAt), `updatedAt increases at event ${i}`);
      const [a, b] = [prev.progress?.percent ?? 0, cur.progress?.percent ?? 0];
      assert.ok(b >= a, `progress never goes back: ${a} → ${b} at event ${i}`);
    }
    const order = ['queued', 'processing', 'ready'];
    for (let i = 1; i < seen.length; i++) {
      assert.ok(order.indexOf(seen[i]!.status) >= order.indexOf(seen[i - 1]!.status), 'status never goes back');
    }
    const processing = seen.filter((a) => a.status === 'processing');
    assert.ok(processing.length >= 2, `several processing events: ${seen.map((a) => a.status).join(', ')}`);
    assert.ok(
      processing.some((a) => (a.progress?.percent ?? 0) > 0 && (a.progress?.percent ?? 0) < 100),
      'progress between 0 and 100 is reported while encoding',
    );
    const last = seen.at(-1)!;
    assert.equal(last.status, 'ready');
    assert.equal(last.playable, true);
    assert.equal(last.progress?.percent, 100);
    assert.ok(last.playback.hls && last.playback.dash);
    assert.equal(seen.filter((a) => a.status === 'ready').length, 1, 'ready is the last event');

    // A stream opened on a finished asset says so once and ends.
    const again: SseEvent[] = [];
    for await (const e of readEvents(await openEvents(p, id, 10_000))) again.push(e);
    assert.equal(again.length, 1);
    assert.equal((JSON.parse(again[0]!.data) as AssetJson).status, 'ready');
  });

  it('sends `deleted` when the asset is deleted mid-stream, then ends', async () => {
    const id = await importNoWait(p, source);
    const res = await openEvents(p, id, 120_000);
    const events: SseEvent[] = [];
    let deleted: Promise<Response> | null = null;
    for await (const e of readEvents(res)) {
      events.push(e);
      if (e.event !== 'asset') continue;
      const a = JSON.parse(e.data) as AssetJson;
      assert.notEqual(a.status, 'ready', 'the encode finished before the test could delete it');
      if (a.status === 'processing' && !deleted) deleted = p.api(`/api/assets/${id}`, { method: 'DELETE' });
    }
    assert.ok(deleted, `never saw processing: ${events.map((e) => e.event).join(', ')}`);
    assert.equal((await deleted).status, 204);
    const last = events.at(-1)!;
    assert.equal(last.event, 'deleted');
    assert.deepEqual(JSON.parse(last.data), { id });
    assert.equal(events.filter((e) => e.event === 'deleted').length, 1);
  });

  it('answers 404 JSON for an unknown asset and 400 for an invalid id', async () => {
    const unknown = await p.api(`/api/assets/${'z'.repeat(16)}/events`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'ASSET_NOT_FOUND');
    const invalid = await p.api(`/api/assets/NOT-AN-ID/events`);
    assert.equal(invalid.status, 400);
    assert.equal(((await invalid.json()) as { error: { code: string } }).error.code, 'INVALID_ID');
    assert.equal((await p.get<{ ok: boolean }>('/healthz')).ok, true);
  });
});

// Security covers live streams too: a signed live stream's playback URLs need a token (the stream's own, from
// POST /api/live/:id/playback-tokens, or the event asset's); it reaches the LL-HLS media playlist and the segments
// and parts it lists; a viewer limit on the stream refuses the next viewer with 429.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createStream, playableEvent, publish } from '../helpers/live.ts';
import { startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';

describe('signed live streams', () => {
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform();
  });
  after(() => p.stop());

  it('needs a token for the stream and its event, carried into the playlists and segments; limits viewers', async () => {
    const s = await createStream(p, { dvrWindowSeconds: 30 });
    const patched = await p.api(`/api/live/${s.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ playbackPolicy: 'signed', maxViewers: 1 }),
    });
    assert.equal(patched.status, 200);
    assert.equal(((await patched.json()) as { playbackPolicy: string }).playbackPolicy, 'signed');
    const pub = publish(s.ingest.rtmp, { seconds: 25, size: '320x180', rate: 15 });
    try {
      const event = await playableEvent(p, s.id, 30_000);
      const bare = await fetch(`${p.url}/v/live/${s.id}/master.m3u8`);
      assert.equal(bare.status, 403, 'the redirect leads to a refusal without a token');
      const t = await p.api(`/api/live/${s.id}/playback-tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(t.status, 201);
      const tok = (await t.json()) as { token: string; playback: { hls: string } };
      const master = await fetch(`${p.url}${tok.playback.hls}`);
      assert.equal(master.status, 200, 'the stream token opens its event (302 keeps the query)');
      assert.equal(master.headers.get('cache-control'), 'private, no-store');
      const text = await master.text();
      const media = text.split('\n').find((l) => l.startsWith('rl-'))!;
      assert.match(media, /token=/);
      const pl = await until(
        'a segment listed',
        async () => {
          const r = await fetch(`${p.url}/v/${event.id}/${media}`);
          const body = await r.text();
          return /\n[^#\n]+\.m4s/.test(body) ? body : undefined;
        },
        30_000,
      );
      const seg = pl.split('\n').find((l) => l && !l.startsWith('#') && l.includes('.m4s'))!;
      assert.match(seg, /token=/, 'segments of a clear signed event carry the token');
      const base = `${p.url}/v/${event.id}/${media.split('/')[0]}/`;
      assert.equal((await fetch(base + seg)).status, 200);
      assert.equal((await fetch(base + seg.split('?')[0])).status, 403);
      // maxViewers 1: the first viewer holds the slot (its sid is in its URLs); a second one is refused.
      const second = await fetch(`${p.url}/v/${event.id}/master.m3u8?token=${encodeURIComponent(tok.token)}`);
      assert.equal(second.status, 429);
      assert.equal(((await second.json()) as { error: { code: string } }).error.code, 'VIEWER_LIMIT_REACHED');
      const info = (await (await p.api(`/api/live/${s.id}`)).json()) as { viewers: number };
      assert.equal(info.viewers, 1);
    } finally {
      pub.child.kill('SIGKILL');
      await pub.exited;
    }
  });
});

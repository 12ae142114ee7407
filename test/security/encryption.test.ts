// Encryption on the fly, checked by tools we did not write, through the real origin: ffmpeg 5.1 with
// -decryption_key decodes each cenc segment (init + that segment) frame-identical to the clear one, video and
// audio; openssl turns an AES-128 segment back into the clear fMP4 bytes with the playlist's IV (the media sequence
// number); every cenc subsample's protected size is a multiple of 16 and no IV repeats under one key; two viewers
// get byte-identical encrypted segments with one ETag; without a valid token the key and the licence are refused.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { importSettled, startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';

const run = promisify(execFile);

async function patch(p: TestPlatform, id: string, body: unknown): Promise<void> {
  const r = await p.api(`/api/assets/${id}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, await r.text());
}

async function sign(p: TestPlatform, id: string) {
  const r = await p.api(`/api/assets/${id}/playback-tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  return (await r.json()) as { token: string; playback: AssetJson['playback'] };
}

async function bytes(url: string): Promise<Buffer> {
  const r = await fetch(url);
  assert.equal(r.status, 200, url);
  return Buffer.from(await r.arrayBuffer());
}

async function framemd5(file: string, key?: string): Promise<string> {
  const args = ['-v', 'error', ...(key ? ['-decryption_key', key] : []), '-i', file, '-f', 'framemd5', '-'];
  const { stdout } = await run('ffmpeg', args, { timeout: 60_000, maxBuffer: 64 << 20 });
  return stdout
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .join('\n');
}

/** Boxes of `buf` in [from, to): type, payload start, end. */
function* boxes(buf: Buffer, from = 0, to = buf.length) {
  let at = from;
  while (at + 8 <= to) {
    const size = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    if (size < 8 || at + size > to) throw new Error(`bad box ${type} at ${at}`);
    yield { type, start: at + 8, end: at + size };
    at += size;
  }
}

/** Every sample's IV and subsamples of a cenc segment (senc with subsamples, ISO/IEC 23001-7 §7.2). */
function sencEntries(seg: Buffer): { iv: string; subs: { clear: number; protected: number }[] }[] {
  const out: { iv: string; subs: { clear: number; protected: number }[] }[] = [];
  for (const moof of boxes(seg)) {
    if (moof.type !== 'moof') continue;
    for (const traf of boxes(seg, moof.start, moof.end)) {
      if (traf.type !== 'traf') continue;
      for (const b of boxes(seg, traf.start, traf.end)) {
        if (b.type !== 'senc') continue;
        const flags = seg.readUInt32BE(b.start) & 0xffffff;
        const count = seg.readUInt32BE(b.start + 4);
        let at = b.start + 8;
        for (let i = 0; i < count; i++) {
          const iv = seg.subarray(at, at + 8).toString('hex');
          at += 8;
          const subs: { clear: number; protected: number }[] = [];
          if (flags & 2) {
            const n = seg.readUInt16BE(at);
            at += 2;
            for (let k = 0; k < n; k++) {
              subs.push({ clear: seg.readUInt16BE(at), protected: seg.readUInt32BE(at + 2) });
              at += 6;
            }
          }
          out.push({ iv, subs });
        }
      }
    }
  }
  return out;
}

describe('encryption on the fly', () => {
  let p: TestPlatform;
  let a: AssetJson;
  let dir: string;
  let rev: string;
  /** Segment URLs name their encryption (`3.cenc.m4s`), as the manifests write them. */
  let tag = '';
  const seg = (rid: string, n: number | 'init') =>
    `${p.url}/v/${a.id}/${rev}/${rid}/${n === 'init' ? `init${tag}.mp4` : `${n}${tag}.m4s`}`;

  before(async () => {
    p = await startTestPlatform();
    dir = mkdtempSync(join(tmpdir(), 'sc-enc-'));
    a = await importSettled(p, await h264Clip({ seconds: 6, width: 320, height: 180 }));
    assert.equal(a.status, 'ready');
    const m = await (await fetch(`${p.url}/v/${a.id}/master.m3u8`)).text();
    rev = m
      .split('\n')
      .find((l) => l.startsWith('r'))!
      .split('/')[0]!;
  });
  after(async () => {
    await p.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function applied(enc: string, policy = 'public') {
    await patch(p, a.id, { encryption: enc, playbackPolicy: policy });
    tag = enc === 'none' ? '' : enc === 'aes-128' ? '.aes' : `.${enc}`;
    // The origin trusts what it read of an asset's access for ≤ 2 s; until then the new names are not served.
    await until(
      `${enc} to apply`,
      async () => {
        const r = await fetch(seg('v0', 0));
        await r.arrayBuffer();
        return r.status === 200 ? true : undefined;
      },
      10_000,
    );
  }

  it('cenc: ffmpeg decrypts each segment frame-identical to the clear one (video and audio)', async () => {
    await applied('none');
    const clear = new Map<string, Buffer>();
    const rids = ['v0', 'a0'];
    const segments = 3;
    for (const rid of rids) {
      clear.set(`${rid}/init`, await bytes(seg(rid, 'init')));
      for (let n = 0; n < segments; n++) clear.set(`${rid}/${n}`, await bytes(seg(rid, n)));
    }
    await applied('cenc');
    const mpd = await (await fetch(`${p.url}/v/${a.id}/manifest.mpd`)).text();
    const kidUuid = /cenc:default_KID="([0-9a-f-]{36})"/.exec(mpd)![1]!;
    const kid = Buffer.from(kidUuid.replace(/-/g, ''), 'hex').toString('base64url');
    const lic = await fetch(`${p.url}/v/${a.id}/${rev}/clearkey`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kids: [kid], type: 'temporary' }),
    });
    assert.equal(lic.status, 200);
    const keyHex = Buffer.from(((await lic.json()) as { keys: { k: string }[] }).keys[0]!.k, 'base64url').toString(
      'hex',
    );
    let decoded = 0;
    for (const rid of rids) {
      const encInit = await bytes(seg(rid, 'init'));
      assert.notDeepEqual(encInit, clear.get(`${rid}/init`));
      for (let n = 0; n < segments; n++) {
        const enc = await bytes(seg(rid, n));
        assert.notDeepEqual(enc.subarray(-64), clear.get(`${rid}/${n}`)!.subarray(-64), 'the payload is encrypted');
        const ef = join(dir, `${rid}-${n}.enc.mp4`);
        const cf = join(dir, `${rid}-${n}.clear.mp4`);
        writeFileSync(ef, Buffer.concat([encInit, enc]));
        writeFileSync(cf, Buffer.concat([clear.get(`${rid}/init`)!, clear.get(`${rid}/${n}`)!]));
        const want = await framemd5(cf);
        assert.ok(want.length > 0);
        assert.equal(await framemd5(ef, keyHex), want, `${rid} segment ${n}`);
        decoded++;
      }
    }
    assert.equal(decoded, rids.length * segments);
    // The oracle discriminates: a wrong key does not give the clear frames.
    const wrong = await framemd5(join(dir, 'v0-0.enc.mp4'), '00'.repeat(16)).catch(() => '');
    assert.notEqual(wrong, await framemd5(join(dir, 'v0-0.clear.mp4')));
  });

  it('cenc: protected sizes are multiples of 16 and no IV repeats under the key', async () => {
    await applied('cenc');
    const ivs = new Set<string>();
    let samples = 0;
    for (const rid of ['v0', 'a0']) {
      for (let n = 0; n < 3; n++) {
        for (const e of sencEntries(await bytes(seg(rid, n)))) {
          samples++;
          assert.ok(!ivs.has(e.iv), `IV ${e.iv} repeats`);
          ivs.add(e.iv);
          if (rid === 'v0') for (const s of e.subs) assert.equal(s.protected % 16, 0, `${rid}/${n}: ${s.protected}`);
        }
      }
    }
    assert.ok(samples > 100, `${samples} samples`);
  });

  it('aes-128: openssl with the playlist IV turns a segment back into the clear fMP4 bytes', async () => {
    await applied('none');
    const clear = await bytes(seg('v0', 1));
    const clearInit = await bytes(seg('v0', 'init'));
    await applied('aes-128');
    const pl = await (await fetch(`${p.url}/v/${a.id}/${rev}/v0.m3u8`)).text();
    const keyLine = pl.split('\n').find((l) => l.startsWith('#EXT-X-KEY'))!;
    assert.match(keyLine, /METHOD=AES-128,URI="key\.bin"/);
    // No IV attribute: the IV is the media sequence number (RFC 8216 §5.2); MEDIA-SEQUENCE is 0, segment 1 → 1.
    assert.match(pl, /#EXT-X-MEDIA-SEQUENCE:0/);
    assert.ok(pl.indexOf('#EXT-X-MAP') < pl.indexOf('#EXT-X-KEY'), 'the init segment stays clear');
    const key = await bytes(`${p.url}/v/${a.id}/${rev}/key.bin`);
    assert.equal(key.length, 16);
    const enc = await bytes(seg('v0', 1));
    const ef = join(dir, 'aes.bin');
    writeFileSync(ef, enc);
    const iv = `${'0'.repeat(31)}1`;
    const { stdout } = await run(
      'openssl',
      ['enc', '-d', '-aes-128-cbc', '-K', key.toString('hex'), '-iv', iv, '-in', ef],
      { encoding: 'buffer', maxBuffer: 64 << 20 },
    );
    assert.deepEqual(Buffer.from(stdout), clear);
    assert.deepEqual(await bytes(seg('v0', 'init')), clearInit, 'the AES-128 init segment is the clear one');
  });

  it('gives two viewers byte-identical encrypted segments with one ETag (signed: only the key is gated)', async () => {
    await applied('cenc', 'signed');
    const t1 = await sign(p, a.id);
    const t2 = await sign(p, a.id);
    const m1 = await (await fetch(p.url + t1.playback.dash!)).text();
    const m2 = await (await fetch(p.url + t2.playback.dash!)).text();
    const media = (m: string) => /media="([^"]+)"/.exec(m)![1]!;
    assert.equal(media(m1), media(m2), 'segment URLs carry no token');
    assert.ok(!media(m1).includes('token='));
    const r1 = await fetch(seg('v0', 2));
    const r2 = await fetch(seg('v0', 2));
    assert.equal(r1.headers.get('etag'), r2.headers.get('etag'));
    assert.match(r1.headers.get('cache-control') ?? '', /^public/);
    assert.deepEqual(Buffer.from(await r1.arrayBuffer()), Buffer.from(await r2.arrayBuffer()));
  });

  it('refuses the key and the licence without a valid token', async () => {
    await applied('cenc', 'signed');
    const lic = `${p.url}/v/${a.id}/${rev}/clearkey`;
    const body = JSON.stringify({ kids: ['AAAAAAAAAAAAAAAAAAAAAA'], type: 'temporary' });
    const none = await fetch(lic, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(none.status, 403);
    const bad = await fetch(`${lic}?token=not.a.token`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(bad.status, 403);
    const t = await sign(p, a.id);
    const drm = t.playback.drm!.clearkey.licenseUrl;
    const ok = await fetch(p.url + drm, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    // A valid token with an unknown KID: refused for the KID, not for the token.
    assert.equal(ok.status, 404);
    assert.equal(ok.headers.get('cache-control'), 'private, no-store');
    await applied('aes-128', 'signed');
    assert.equal((await fetch(`${p.url}/v/${a.id}/${rev}/key.bin`)).status, 403);
    const k = await fetch(`${p.url}/v/${a.id}/${rev}/key.bin?token=${encodeURIComponent(t.token)}`);
    assert.equal(k.status, 200);
    assert.equal(k.headers.get('cache-control'), 'private, no-store');
  });

  it('never serves one URL with two contents: clear names are refused while encrypted, and the other way round', async () => {
    await applied('cenc');
    const clearName = `${p.url}/v/${a.id}/${rev}/v0/0.m4s`;
    assert.equal((await fetch(clearName)).status, 404);
    assert.equal((await fetch(clearName.replace('0.m4s', '0.cbcs.m4s'))).status, 404);
    assert.match(await (await fetch(`${p.url}/v/${a.id}/manifest.mpd`)).text(), /\$Number\$\.cenc\.m4s/);
  });

  it('refuses the clear single files, byte-range manifests and downloads of an encrypted asset', async () => {
    await applied('cenc');
    for (const path of [`/v/${a.id}/byterange.m3u8`, `/v/${a.id}/ondemand.mpd`, `/v/${a.id}/${rev}/v0.mp4`]) {
      const r = await fetch(p.url + path);
      assert.ok([409, 403].includes(r.status), `${path} → ${r.status}`);
    }
  });
});

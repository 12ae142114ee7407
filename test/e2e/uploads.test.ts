// Resumable uploads over tus 1.0 against a real server on port 0: the protocol and its extensions (creation,
// creation-with-upload, termination, expiration, checksum), what happens to bad requests (the stored bytes never
// change), locking, expiry, and the hand-over of a finished upload to an asset.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Upload } from 'tus-js-client';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { settled, startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';

const TUS = { 'tus-resumable': '1.0.0' };
const OCTETS = { ...TUS, 'content-type': 'application/offset+octet-stream' };

function metadata(m: Record<string, string>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');
}

async function create(p: TestPlatform, size: number, meta = { filename: 'clip.mp4', title: 'A clip' }) {
  const res = await p.api('/api/uploads', {
    method: 'POST',
    headers: { ...TUS, 'upload-length': String(size), 'upload-metadata': metadata(meta) },
  });
  assert.equal(res.status, 201, await res.text());
  const location = res.headers.get('location');
  assert.ok(location, 'Location header');
  const url = new URL(location, p.url).href;
  return { url, id: url.split('/').at(-1)! };
}

function patch(p: TestPlatform, url: string, offset: number, body: Uint8Array, headers: Record<string, string> = {}) {
  const h = { ...p.auth, ...OCTETS, 'upload-offset': String(offset), ...headers };
  return fetch(url, { method: 'PATCH', headers: h, body });
}

async function offsetOf(p: TestPlatform, url: string): Promise<number> {
  const res = await fetch(url, { method: 'HEAD', headers: { ...p.auth, ...TUS } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  return Number(res.headers.get('upload-offset'));
}

const sha = (algo: string, b: Uint8Array) => createHash(algo).update(b).digest('base64');
const sha256hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Uploads a file with tus-js-client (the client the CLI and the web app use). */
function tusUpload(p: TestPlatform, endpoint: string, data: Buffer, opts: { chunkSize?: number; filename: string }) {
  return new Promise<{ url: string; asset: string | null }>((resolve, reject) => {
    let asset: string | null = null;
    const u: Upload = new Upload(data, {
      endpoint,
      headers: p.auth,
      chunkSize: opts.chunkSize ?? Number.POSITIVE_INFINITY,
      metadata: { filename: opts.filename, title: `Title of ${opts.filename}` },
      retryDelays: [],
      onAfterResponse: (_req, res) => {
        asset = res.getHeader('Smoothcast-Asset') ?? asset;
      },
      onError: reject,
      onSuccess: () => resolve({ url: u.url!, asset }),
    });
    u.start();
  });
}

describe('uploads over tus', () => {
  let p: TestPlatform;
  let clip: Buffer;
  let uploadsDir: string;

  before(async () => {
    p = await startTestPlatform();
    uploadsDir = join(p.dataDir, 'uploads');
    clip = readFileSync(await h264Clip({ seconds: 4 }));
  });
  after(() => p?.stop());

  it('advertises tus 1.0 with creation, creation-with-upload, termination, expiration and checksum', async () => {
    const res = await fetch(`${p.url}/api/uploads`, { method: 'OPTIONS' });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('tus-version'), '1.0.0');
    const ext = res.headers.get('tus-extension')?.split(',') ?? [];
    for (const e of ['creation', 'creation-with-upload', 'termination', 'expiration', 'checksum']) {
      assert.ok(ext.includes(e), `${e} in ${ext}`);
    }
    assert.ok(res.headers.get('tus-checksum-algorithm')?.split(',').includes('sha1'));
    assert.equal(res.headers.get('tus-max-size'), String(20 * 1024 ** 3));
  });

  it('refuses an over-size upload at creation with 413 and a clear message, storing nothing', async () => {
    const before = readdirSync(uploadsDir);
    const res = await p.api('/api/uploads', {
      method: 'POST',
      headers: { ...TUS, 'upload-length': String(20 * 1024 ** 3 + 1) },
    });
    assert.equal(res.status, 413);
    assert.match(await res.text(), /larger than the limit of 20 GiB \(uploads\.maxSize\)/);
    assert.deepEqual(readdirSync(uploadsDir), before);
  });

  it('answers a wrong offset with 409 and a bad checksum with 460, leaving the stored bytes as they were', async () => {
    const data = randomBytes(300_000);
    const { url, id } = await create(p, data.length);
    const first = data.subarray(0, 100_000);
    let res = await patch(p, url, 0, first, { 'upload-checksum': `sha1 ${sha('sha1', first)}` });
    assert.equal(res.status, 204, await res.text());
    assert.equal(res.headers.get('upload-offset'), '100000');
    assert.ok(res.headers.get('upload-expires'), 'Upload-Expires on an unfinished upload');
    const stored = () => readFileSync(join(uploadsDir, id));

    res = await patch(p, url, 50_000, data.subarray(50_000, 150_000));
    assert.equal(res.status, 409);
    assert.ok(stored().equals(first), 'wrong offset: bytes unchanged');

    const second = data.subarray(100_000, 200_000);
    const wrong = sha('sha1', data.subarray(0, 10));
    res = await patch(p, url, 100_000, second, { 'upload-checksum': `sha1 ${wrong}` });
    assert.equal(res.status, 460);
    assert.ok(stored().equals(first), 'bad checksum: the PATCH is discarded whole');
    assert.equal(await offsetOf(p, url), 100_000);

    res = await patch(p, url, 100_000, second, { 'upload-checksum': `crc99 ${wrong}` });
    assert.equal(res.status, 400, 'unsupported algorithm');
    res = await patch(p, url, 100_000, second, { 'upload-checksum': `sha256 ${sha('sha256', second)}` });
    assert.equal(res.status, 204);
    assert.ok(stored().equals(data.subarray(0, 200_000)));
    // Termination: the bytes go at once.
    res = await fetch(url, { method: 'DELETE', headers: { ...p.auth, ...TUS } });
    assert.equal(res.status, 204);
    assert.equal(existsSync(join(uploadsDir, id)), false);
    assert.equal(existsSync(join(uploadsDir, `${id}.json`)), false);
    assert.equal((await fetch(url, { method: 'HEAD', headers: { ...p.auth, ...TUS } })).status, 404);
  });

  it('takes 1 MiB and 100 MiB chunks; a finished non-video becomes a failed asset with its reason', async () => {
    const data = randomBytes(101 * 2 ** 20);
    const { url, id } = await create(p, data.length, { filename: 'notes.bin', title: 'Not a video' });
    let res = await patch(p, url, 0, data.subarray(0, 2 ** 20));
    assert.equal(res.status, 204);
    res = await patch(p, url, 2 ** 20, data.subarray(2 ** 20));
    assert.equal(res.status, 204, await res.text());
    const assetId = res.headers.get('smoothcast-asset');
    assert.ok(assetId, 'the finishing PATCH names the asset');
    const viaApi = (await (await fetch(`${url}/asset`, { headers: p.auth })).json()) as AssetJson;
    assert.equal(viaApi.id, assetId);
    assert.equal(viaApi.title, 'Not a video');
    // The stored source is the uploaded file, byte for byte, and the same bytes on disk (a link, not a copy); the
    // finished upload still answers HEAD during its grace period.
    const srcDir = join(p.dataDir, 'media', 'assets', assetId);
    const source = join(srcDir, readdirSync(srcDir).find((f) => f.startsWith('source'))!);
    assert.equal(sha256hex(readFileSync(source)), sha256hex(data));
    assert.equal(statSync(source).ino, statSync(join(uploadsDir, id)).ino);
    assert.equal(await offsetOf(p, url), data.length);
    const a = await settled(p, assetId, 60_000);
    assert.equal(a.status, 'failed');
    assert.equal(a.error?.code, 'MEDIA_UNREADABLE');
    assert.match(a.error?.message ?? '', /./);
  });

  it('turns a finished upload into an asset that encodes and plays', async () => {
    const { url, asset } = await tusUpload(p, `${p.url}/api/uploads`, clip, {
      chunkSize: 64 * 1024,
      filename: 'c.mp4',
    });
    assert.ok(asset, 'Smoothcast-Asset on the last PATCH');
    const res = await fetch(`${url}/asset`, { headers: p.auth });
    assert.equal(res.status, 200);
    const a = (await res.json()) as AssetJson;
    assert.equal(a.id, asset);
    assert.equal(a.title, 'Title of c.mp4');
    const done = await settled(p, a.id);
    assert.equal(done.status, 'ready', JSON.stringify(done.error));
    assert.ok(done.playback.hls);
    // creation-with-upload: the whole body in the POST.
    const res2 = await p.api('/api/uploads', {
      method: 'POST',
      headers: { ...OCTETS, 'upload-length': String(clip.length), 'upload-metadata': metadata({ filename: 'w.mp4' }) },
      body: clip,
    });
    assert.equal(res2.status, 201, await res2.text());
    assert.equal(res2.headers.get('upload-offset'), String(clip.length));
    assert.ok(res2.headers.get('smoothcast-asset'));
  });

  it('answers an unknown or unfinished upload with a stable code, and refuses ids that are not ours', async () => {
    const { url } = await create(p, 1000);
    let res = await fetch(`${url}/asset`, { headers: p.auth });
    assert.equal(res.status, 409);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'UPLOAD_INCOMPLETE');
    res = await p.api(`/api/uploads/${'0'.repeat(32)}/asset`);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'UPLOAD_NOT_FOUND');
    for (const bad of ['..%2F..%2Fsmoothcast.db', 'ABC', `${'0'.repeat(32)}.json`]) {
      res = await p.api(`/api/uploads/${bad}`, { method: 'HEAD', headers: TUS });
      assert.equal(res.status, 404, bad);
      res = await patch(p, `${p.url}/api/uploads/${bad}`, 0, Buffer.from('x'));
      assert.equal(res.status, 404, bad);
    }
    assert.ok(existsSync(join(p.dataDir, 'smoothcast.db')));
    assert.equal((await fetch(`${p.url}/healthz`)).status, 200, 'still serving');
  });

  it('locks an upload: concurrent PATCHes cannot interleave their bytes', async () => {
    const size = 24 * 2 ** 20;
    const a = Buffer.alloc(size, 0xaa);
    const b = Buffer.alloc(size, 0xbb);
    const { url, id } = await create(p, size);
    const results = await Promise.allSettled([patch(p, url, 0, a), patch(p, url, 0, b), patch(p, url, 0, a)]);
    const statuses = results.map((r) => (r.status === 'fulfilled' ? r.value.status : 'network error'));
    const stored = readFileSync(join(uploadsDir, id));
    assert.equal(await offsetOf(p, url), stored.length, `offset = bytes on disk (${statuses})`);
    assert.ok(stored.length > 0);
    const byte = stored[0];
    assert.ok(
      stored.every((x) => x === byte),
      `one writer's bytes only: ${statuses}`,
    );
    // And the upload goes on from there.
    if (stored.length < size) {
      const rest = (byte === 0xaa ? a : b).subarray(stored.length);
      assert.equal((await patch(p, url, stored.length, rest)).status, 204);
    }
    assert.equal(await offsetOf(p, url), size);
  });
});

describe('upload expiry and source clean-up', () => {
  let p: TestPlatform;

  before(async () => {
    p = await startTestPlatform({
      uploads: { expireHours: 1 / 3600, sweepSeconds: 1 },
      storage: { keepSources: false },
    });
  });
  after(() => p?.stop());

  it('sweeps an upload without progress once it expires; HEAD then answers it is gone', async () => {
    const { url, id } = await create(p, 1000);
    assert.equal((await patch(p, url, 0, Buffer.alloc(10))).status, 204);
    const file = join(p.dataDir, 'uploads', id);
    assert.ok(existsSync(file));
    await until('the sweep', () => (existsSync(file) || existsSync(`${file}.json`) ? undefined : true), 10_000);
    const res = await fetch(url, { method: 'HEAD', headers: { ...p.auth, ...TUS } });
    assert.ok([404, 410].includes(res.status), `HEAD ${res.status}`);
  });

  it("removes a finished upload's files after the grace period; its asset stays", async () => {
    const { url, id } = await create(p, 5);
    const res = await patch(p, url, 0, Buffer.from('12345'));
    assert.equal(res.status, 204);
    const asset = res.headers.get('smoothcast-asset');
    assert.ok(asset);
    const file = join(p.dataDir, 'uploads', id);
    await until('the sweep', () => (existsSync(file) || existsSync(`${file}.json`) ? undefined : true), 10_000);
    const a = (await (await p.api(`/api/assets/${asset}`)).json()) as AssetJson;
    assert.equal(a.id, asset);
    assert.equal(
      ((await (await fetch(`${url}/asset`, { headers: p.auth })).json()) as AssetJson).id,
      asset,
      'still answers by upload id',
    );
  });

  it('deletes the source once the asset is ready when storage.keepSources is false', async () => {
    const clip = readFileSync(await h264Clip({ seconds: 2, audio: false }));
    const { asset } = await tusUpload(p, `${p.url}/api/uploads`, clip, { filename: 'gone.mp4' });
    assert.ok(asset);
    const a = await settled(p, asset);
    assert.equal(a.status, 'ready');
    const files = readdirSync(join(p.dataDir, 'media', 'assets', asset));
    assert.equal(
      files.some((f) => f.startsWith('source')),
      false,
      `${files}`,
    );
  });
});

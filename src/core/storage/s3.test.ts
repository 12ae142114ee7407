// S3Storage against a real S3 server (a throwaway OpenStack Swift with s3api, test/helpers/services/swift.ts), and
// the read cache on its own.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Swift, startSwift } from '../../../test/helpers/services/swift.ts';
import { loadConfig } from '../config.ts';
import { SmoothcastError } from '../errors.ts';
import { storageConformance } from './conformance.ts';
import { openStorage } from './open.ts';
import { S3Storage, type S3StorageOptions } from './s3.ts';
import { BLOCK_BYTES, type Got, RangeCache } from './s3-cache.ts';

const BUCKET = 'smoothcast-test';
const scratch = mkdtempSync(join(tmpdir(), 'sc-s3-scratch-'));
const run = randomBytes(3).toString('hex');
let swift: Swift;
let n = 0;
const opened: S3Storage[] = [];

function open(extra: Partial<S3StorageOptions> = {}): S3Storage {
  const s = new S3Storage({
    endpoint: swift.endpoint,
    region: swift.region,
    accessKeyId: swift.accessKeyId,
    secretAccessKey: swift.secretAccessKey,
    bucket: BUCKET,
    // A fresh prefix per storage: every conformance case starts from an empty store.
    prefix: `t${run}-${++n}`,
    scratchDir: scratch,
    ...extra,
  });
  opened.push(s);
  return s;
}

before(async () => {
  swift = await startSwift();
  const s = open();
  await s.ensureBucket();
  await s.ensureBucket(); // a second time is fine
});

after(async () => {
  for (const s of opened) s.close();
  await swift?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

storageConformance('S3 (OpenStack Swift s3api)', async () => open());

describe('S3 storage', () => {
  it('has no local paths', () => {
    assert.throws(() => open().localPath('assets/abc12345/source.mp4'), { code: 'STORAGE_NOT_LOCAL' });
  });

  it('keeps storages with different prefixes apart', async () => {
    const a = open();
    const b = open();
    await a.putBytes('assets/pfx00000/poster.jpg', Buffer.from('a'));
    assert.equal(await b.stat('assets/pfx00000/poster.jpg'), null);
    assert.deepEqual(await b.list('assets/pfx00000'), []);
    await b.deletePrefix('assets/pfx00000');
    assert.deepEqual(await a.getBytes('assets/pfx00000/poster.jpg'), Buffer.from('a'));
  });

  it('lists and deletes across listing pages', async () => {
    const s = open({ listPageSize: 2 });
    const names = ['a.jpg', 'b.jpg', 'c.jpg', 'd/e.jpg', 'f.jpg'];
    await Promise.all(names.map((f) => s.putBytes(`assets/pag00000/${f}`, Buffer.from(f))));
    assert.deepEqual(
      (await s.list('assets/pag00000')).map((o) => o.key),
      names.map((f) => `assets/pag00000/${f}`),
    );
    await s.deletePrefix('assets/pag00000');
    assert.deepEqual(await s.list('assets/pag00000'), []);
  });

  it('is opened as configured, creating its bucket', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sc-s3-data-'));
    const s3 = {
      dataDir,
      backend: 's3',
      s3Endpoint: swift.endpoint,
      s3Bucket: 'smoothcast-open',
      s3Prefix: 'deploy1/',
      s3AccessKeyId: swift.accessKeyId,
      s3SecretAccessKey: swift.secretAccessKey,
    };
    const s = await openStorage(loadConfig({ env: {}, overrides: { storage: s3 } }));
    assert.ok(s instanceof S3Storage);
    opened.push(s);
    assert.equal(s.bucket, 'smoothcast-open');
    assert.equal(s.prefix, 'deploy1/');
    assert.equal(s.scratchDir, join(dataDir, 'scratch'));
    await s.putBytes('assets/opn00000/poster.jpg', Buffer.from('p'));
    assert.deepEqual(await s.getBytes('assets/opn00000/poster.jpg'), Buffer.from('p'));
    assert.equal((await openStorage(loadConfig({ env: {}, overrides: { storage: { dataDir } } }))).backend, 'local');
    const noBucket = loadConfig({ env: {}, overrides: { storage: { ...s3, s3Bucket: '' } } });
    await assert.rejects(openStorage(noBucket), { code: 'CONFIG_INVALID' });
    const env = loadConfig({
      env: {
        SMOOTHCAST_STORAGE_BACKEND: 's3',
        SMOOTHCAST_STORAGE_SCRATCH_DIR: '/tmp/x',
        SMOOTHCAST_STORAGE_S3_ENDPOINT: 'https://s3.example.com',
        SMOOTHCAST_STORAGE_S3_REGION: 'eu-west-1',
        SMOOTHCAST_STORAGE_S3_BUCKET: 'media',
        SMOOTHCAST_STORAGE_S3_PREFIX: 'a/b',
        SMOOTHCAST_STORAGE_S3_ACCESS_KEY_ID: 'AKID',
        SMOOTHCAST_STORAGE_S3_SECRET_ACCESS_KEY: 'secret',
        SMOOTHCAST_STORAGE_S3_FORCE_PATH_STYLE: 'false',
        SMOOTHCAST_STORAGE_S3_CACHE_BYTES: '0',
      },
    }).storage;
    assert.deepEqual(
      [env.backend, env.scratchDir, env.s3Endpoint, env.s3Region, env.s3Bucket, env.s3Prefix, env.s3AccessKeyId],
      ['s3', '/tmp/x', 'https://s3.example.com', 'eu-west-1', 'media', 'a/b', 'AKID'],
    );
    assert.deepEqual([env.s3SecretAccessKey, env.s3ForcePathStyle, env.s3CacheBytes], ['secret', false, 0]);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('reads without a cache too', async () => {
    const s = open({ cacheBytes: 0 });
    const data = randomBytes(300_000);
    await s.putBytes('assets/nch00000/v0.mp4', data);
    const into = Buffer.alloc(200_000);
    const view = await s.read('assets/nch00000/v0.mp4', 250_000, 100_000, into);
    assert.equal(view.buffer, into.buffer);
    assert.ok(view.equals(data.subarray(250_000)));
  });

  it('ends in STORAGE_UNAVAILABLE, not a hang, when the server accepts but never answers', async () => {
    const sockets: Socket[] = [];
    const hole = createServer((c) => sockets.push(c));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    const port = (hole.address() as { port: number }).port;
    const s = open({ endpoint: `http://127.0.0.1:${port}`, requestTimeoutMs: 300, maxAttempts: 1 });
    try {
      const t0 = Date.now();
      await assert.rejects(s.stat('assets/abc12345/v0.mp4'), { code: 'STORAGE_UNAVAILABLE' });
      await assert.rejects(s.read('assets/abc12345/v0.mp4', 0, 100), { code: 'STORAGE_UNAVAILABLE' });
      assert.ok(Date.now() - t0 < 5000, `gave up after ${Date.now() - t0} ms`);
    } finally {
      for (const c of sockets) c.destroy();
      hole.close();
    }
  });

  // Last: it stops the shared Swift.
  it('ends in STORAGE_UNAVAILABLE within a bounded time when the server is gone', async () => {
    const s = open();
    await s.putBytes('assets/dead0000/v0.mp4', randomBytes(1000));
    assert.equal((await s.stat('assets/dead0000/v0.mp4'))?.size, 1000);
    await swift.stop();
    const t0 = Date.now();
    for (const op of [
      () => s.stat('assets/dead0000/v0.mp4'),
      () => s.read('assets/dead0000/v0.mp4', 0, 100),
      () => s.putBytes('assets/dead0000/x.jpg', Buffer.from('x')),
    ]) {
      const err = await op().then(
        () => assert.fail('resolved'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof SmoothcastError, String(err));
      assert.equal(err.code, 'STORAGE_UNAVAILABLE');
      assert.match(err.message, /^S3 \w+ of assets\/dead0000\/\S+ failed: /);
    }
    assert.ok(Date.now() - t0 < 10_000, `gave up after ${Date.now() - t0} ms`);
  });
});

describe('S3 read cache', () => {
  function object(size: number) {
    let data: Buffer = randomBytes(size);
    let etag = '"1"';
    const gets: [number, number][] = [];
    const get = async (offset: number, length: number): Promise<Got> => {
      gets.push([offset, length]);
      await new Promise((r) => setTimeout(r, 5));
      return { bytes: Buffer.from(data.subarray(offset, offset + length)), etag };
    };
    return {
      get,
      gets,
      get data() {
        return data;
      },
      replace(next: Buffer, tag: string) {
        data = next;
        etag = tag;
      },
    };
  }

  it('serves the small reads of one region from one GET of aligned blocks', async () => {
    const o = object(3 * BLOCK_BYTES + 100);
    const c = new RangeCache(16 * BLOCK_BYTES);
    for (let at = 0; at < BLOCK_BYTES - 8; at += 997) {
      assert.ok((await c.read('k', at, 8, o.get)).equals(o.data.subarray(at, at + 8)));
    }
    assert.deepEqual(o.gets, [[0, BLOCK_BYTES]]);
    // Across a block boundary: both blocks missing → one GET of two.
    assert.ok(
      (await c.read('k', 2 * BLOCK_BYTES - 10, 20, o.get)).equals(
        o.data.subarray(2 * BLOCK_BYTES - 10, 2 * BLOCK_BYTES + 10),
      ),
    );
    assert.deepEqual(o.gets.at(-1), [BLOCK_BYTES, 2 * BLOCK_BYTES]);
    // Near the end: the last block is short, reads past it give what exists.
    assert.ok((await c.read('k', 3 * BLOCK_BYTES + 90, 64, o.get)).equals(o.data.subarray(3 * BLOCK_BYTES + 90)));
    assert.equal(o.gets.length, 3);
  });

  it('shares one GET between concurrent readers and caches large ranges exactly', async () => {
    const o = object(4 * BLOCK_BYTES);
    const c = new RangeCache(16 * BLOCK_BYTES);
    await Promise.all(Array.from({ length: 10 }, (_, i) => c.read('k', i * 100, 50, o.get)));
    assert.equal(o.gets.length, 1);
    await Promise.all(Array.from({ length: 5 }, () => c.read('k', 1000, 300_000, o.get)));
    await c.read('k', 1000, 300_000, o.get);
    assert.equal(o.gets.length, 2);
  });

  it('stays within its byte budget', async () => {
    const o = object(64 * BLOCK_BYTES);
    const c = new RangeCache(4 * BLOCK_BYTES);
    for (let b = 0; b < 64; b++) await c.read('k', b * BLOCK_BYTES, 10, o.get);
    assert.ok(c.usedBytes <= c.maxBytes, `${c.usedBytes} > ${c.maxBytes}`);
    await c.read('k', 63 * BLOCK_BYTES, 10, o.get); // the most recent one is still there
    assert.equal(o.gets.length, 64);
    await c.read('k', 0, 10, o.get); // the first one is long gone
    assert.equal(o.gets.length, 65);
  });

  it('does not keep what a GET brought when the key was dropped while it ran', async () => {
    const o = object(BLOCK_BYTES);
    const c = new RangeCache(16 * BLOCK_BYTES);
    const reading = c.read('k', 0, 10, o.get);
    c.invalidate('k');
    o.replace(randomBytes(BLOCK_BYTES), '"2"');
    await reading;
    assert.ok((await c.read('k', 0, 10, o.get)).equals(o.data.subarray(0, 10)));
    assert.equal(o.gets.length, 2);
  });

  it('drops what it read under an ETag the object no longer has', async () => {
    const o = object(BLOCK_BYTES);
    const c = new RangeCache(16 * BLOCK_BYTES);
    await c.read('k', 0, 10, o.get);
    o.replace(randomBytes(BLOCK_BYTES), '"2"');
    c.noteEtag('k', '"1"');
    assert.equal(o.gets.length, 1);
    c.noteEtag('k', '"2"'); // as a HEAD of the replaced object would see it
    assert.ok((await c.read('k', 0, 10, o.get)).equals(o.data.subarray(0, 10)));
    c.invalidatePrefix('k');
    await c.read('k', 0, 10, o.get);
    assert.equal(o.gets.length, 3);
  });
});

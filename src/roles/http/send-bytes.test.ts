// sendBytes over a real Fastify server on port 0: pooled read buffers are recycled only after their response has
// left, so many concurrent (and aborted) requests each get exactly their own bytes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { BufferPool } from './buffer-pool.ts';
import { sendBytes } from './send-bytes.ts';

describe('sendBytes with a buffer pool', () => {
  // Objects of different sizes, all above the pooling threshold; the largest two share a size class and are more than
  // loopback socket buffers hold, so their writes are still pending when the next request reads.
  const objects = [70_000, 100_000, 300_000, 1_500_000, 9_000_000, 12_000_000].map((n) => randomBytes(n));
  const pool = new BufferPool({ maxIdleBytes: 64 << 20, maxBuffer: 16 << 20 });
  let app: FastifyInstance;
  let base: string;

  before(async () => {
    app = Fastify();
    app.get<{ Params: { n: string } }>('/o/:n', (req, reply) => {
      const data = objects[Number(req.params.n)]!;
      return sendBytes(req, reply, {
        size: data.length,
        etag: `"o${req.params.n}"`,
        contentType: 'application/octet-stream',
        cacheControl: 'no-cache',
        pool,
        // A slow-ish read so that requests overlap.
        read: async (offset, length, into) => {
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          const out = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
          data.copy(out, 0, offset, offset + length);
          return out;
        },
      });
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });

  after(() => app.close());

  it('answers hundreds of overlapping requests, ranges and aborts with exactly the right bytes', async () => {
    const checks: Promise<void>[] = [];
    for (let i = 0; i < 120; i++) {
      const n = i % objects.length;
      const data = objects[n]!;
      if (i % 10 === 7) {
        // A client that goes away mid-body: its buffer must not be handed to anyone before the socket is done.
        checks.push(
          new Promise<void>((resolve) => {
            const req = request(`${base}/o/${n}`, (res) => {
              res.once('data', () => {
                req.destroy();
                resolve();
              });
            });
            req.on('error', () => resolve());
            req.end();
          }),
        );
        continue;
      }
      const ranged = i % 3 === 0;
      const start = ranged ? 1 + ((i * 7919) % (data.length - 1000)) : 0;
      checks.push(
        (async () => {
          const res = await fetch(`${base}/o/${n}`, ranged ? { headers: { range: `bytes=${start}-` } } : {});
          assert.equal(res.status, ranged ? 206 : 200);
          // Slow readers keep their body in flight, so the server's write is still pending when others read.
          await new Promise((r) => setTimeout(r, 20 + Math.random() * 60));
          const body = Buffer.from(await res.arrayBuffer());
          assert.ok(body.equals(data.subarray(start)), `request ${i}: object ${n} from ${start} differs`);
        })(),
      );
    }
    await Promise.all(checks);
    assert.ok(pool.idle > 0, 'buffers came back to the pool');
    assert.ok(pool.idle <= 64 << 20, 'and no more than its bound');
  });
});

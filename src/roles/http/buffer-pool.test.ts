import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BufferPool } from './buffer-pool.ts';

describe('BufferPool', () => {
  it('hands out power-of-two classes and reuses returned buffers', () => {
    const pool = new BufferPool({ maxIdleBytes: 8 << 20, maxBuffer: 4 << 20 });
    assert.equal(BufferPool.classOf(1), 64 * 1024);
    assert.equal(BufferPool.classOf(1_300_000), 2 << 20);
    const a = pool.take(1_300_000);
    assert.equal(a.length, 2 << 20);
    pool.release(a);
    assert.equal(pool.idle, 2 << 20);
    assert.equal(pool.take(1_100_000), a, 'same class: the same buffer again');
    assert.equal(pool.idle, 0);
    assert.notEqual(pool.take(1_100_000), a, 'taken buffers are never handed out twice');
  });

  it('bounds what it keeps and never pools oversized or foreign buffers', () => {
    const pool = new BufferPool({ maxIdleBytes: 3 << 20, maxBuffer: 2 << 20 });
    const big = pool.take(3 << 20);
    assert.equal(big.length, 3 << 20, 'oversized: exact allocation');
    pool.release(big);
    assert.equal(pool.idle, 0);
    pool.release(Buffer.alloc(1000)); // not a class size
    assert.equal(pool.idle, 0);
    const [x, y] = [pool.take(2 << 20), pool.take(2 << 20)];
    pool.release(x);
    pool.release(y); // would pass the idle bound: dropped
    assert.equal(pool.idle, 2 << 20);
  });
});

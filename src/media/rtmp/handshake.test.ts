import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmoothcastError } from '../../core/errors.ts';
import { HANDSHAKE_SIZE, ServerHandshake } from './handshake.ts';
import { clientHandshake, concat } from './testing.ts';

const fixedRandom = (n: number) => new Uint8Array(n).fill(0xab);

describe('handshake', () => {
  it('answers C0+C1 with S0+S1+S2 and finishes on C2, handing back what follows', () => {
    const { c0c1, c2 } = clientHandshake();
    const hs = new ServerHandshake(fixedRandom);
    const r1 = hs.push(c0c1, 1234);
    assert.equal(r1.done, false);
    assert.equal(r1.out.length, 1);
    const s = r1.out[0] as Uint8Array;
    assert.equal(s.length, 1 + 2 * HANDSHAKE_SIZE);
    const view = new DataView(s.buffer, s.byteOffset);
    assert.equal(s[0], 3, 'S0 version');
    assert.equal(view.getUint32(1), 1234, 'S1 time');
    assert.equal(view.getUint32(5), 0, 'S1 zero: no digest, the simple handshake');
    assert.ok(
      s.subarray(9, 1 + HANDSHAKE_SIZE).every((b) => b === 0xab),
      'S1 random from the injected source',
    );
    // S2 echoes C1 (time and random), with time2 = when C1 was read (§5.2.4).
    const s2 = s.subarray(1 + HANDSHAKE_SIZE);
    assert.deepEqual(s2.subarray(0, 4), c0c1.subarray(1, 5));
    assert.equal(view.getUint32(1 + HANDSHAKE_SIZE + 4), 1234);
    assert.deepEqual(s2.subarray(8), c0c1.subarray(9));

    const after = Uint8Array.of(1, 2, 3);
    const r2 = hs.push(concat([c2, after]), 1300);
    assert.equal(r2.done, true);
    assert.deepEqual(r2.out, []);
    assert.deepEqual(r2.rest, after);
    assert.ok(hs.done);
  });

  it('takes the bytes in any split, one at a time included', () => {
    const { c0c1, c2 } = clientHandshake();
    const all = concat([c0c1, c2, Uint8Array.of(9)]);
    const hs = new ServerHandshake(fixedRandom);
    const out: Uint8Array[] = [];
    const rest: number[] = [];
    for (let i = 0; i < all.length; i++) {
      const r = hs.push(all.subarray(i, i + 1), 0);
      out.push(...r.out);
      rest.push(...r.rest);
      assert.equal(r.done, i >= c0c1.length + c2.length - 1);
    }
    assert.equal(out.length, 1);
    assert.deepEqual(out[0], new ServerHandshake(fixedRandom).push(c0c1, 0).out[0]);
    assert.deepEqual(rest, [9]);
  });

  it('rejects a version other than 3 (6 is RTMPE) as soon as C0 arrives', () => {
    for (const version of [0, 6, 0x16 /* a TLS ClientHello */]) {
      const hs = new ServerHandshake(fixedRandom);
      assert.throws(
        () => hs.push(Uint8Array.of(version), 0),
        (err) => err instanceof SmoothcastError && err.code === 'RTMP_PROTOCOL' && /version/.test(err.message),
      );
    }
  });
});

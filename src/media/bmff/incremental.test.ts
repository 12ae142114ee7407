// FragmentIndexer over a file that grows, as the origin reads a rendition ffmpeg is still writing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { cmafFixture } from '../../../test/helpers/media.ts';
import { FragmentIndexer, indexBuffer } from './index.ts';
import { prng } from './testing.ts';

interface Run {
  reads: number;
  bytesRead: number;
}

/**
 * Reveals `file` in random steps. With `lag`, the size handed to next() is sometimes ahead of what a read returns
 * (a writer's size seen before its bytes), so reads come back short.
 */
function grow(file: Uint8Array, seed: number, maxStep: number, lag: boolean): { ix: FragmentIndexer; run: Run } {
  const random = prng(seed);
  const ix = new FragmentIndexer();
  const run: Run = { reads: 0, bytesRead: 0 };
  let size = 0;
  let written = 0;
  let seen = 0;
  while (size < file.length) {
    size = Math.min(file.length, size + 1 + Math.floor(random() * maxStep));
    written = Math.max(written, lag && random() < 0.3 ? size - Math.floor(random() * 64) : size);
    for (let r = ix.next(size); r; r = ix.next(size)) {
      const bytes = file.subarray(r.offset, Math.min(written, r.offset + r.length));
      run.reads++;
      run.bytesRead += bytes.length;
      ix.push(r.offset, bytes);
      assert.ok(run.reads < 100_000, 'the indexer keeps asking');
    }
    for (const s of ix.segments) assert.ok(s.offset + s.size <= written, 'segment reported before its mdat is whole');
    assert.ok(ix.segments.length >= seen, 'segments never disappear');
    seen = ix.segments.length;
    assert.ok(ix.position <= size);
  }
  // The writer catches up: the last lagging read is answered.
  for (let r = ix.next(size + 1); r; r = ix.next(size + 1))
    ix.push(r.offset, file.subarray(r.offset, r.offset + r.length));
  return { ix, run };
}

describe('FragmentIndexer on a growing file', () => {
  for (const kind of ['video', 'audio'] as const) {
    it(`${kind}: revealed in random steps, ends where indexBuffer does`, async () => {
      const file = new Uint8Array(readFileSync(await cmafFixture(kind)));
      const whole = indexBuffer(file);
      for (let seed = 1; seed <= 20; seed++) {
        const maxStep = seed <= 10 ? 4096 : 40_000;
        const { ix, run } = grow(file, seed, maxStep, false);
        assert.deepEqual(ix.track, whole.track);
        assert.deepEqual(ix.segments, whole.segments, `seed ${seed}`);
        assert.equal(ix.position, file.length);
        // ftyp header, moov header and body, per fragment the moof header and the moof body (with the mdat header
        // after it), the mfra header: box headers and moov/moof bodies only.
        const n = whole.segments.length;
        assert.ok(run.reads <= 4 + 2 * n, `${run.reads} reads for ${n} segments`);
        const view = new DataView(file.buffer, file.byteOffset);
        const moofBytes = whole.segments.reduce((sum, s) => sum + view.getUint32(s.offset), 0);
        const limit = 16 + whole.track.initSize + moofBytes + 32 * n + 16;
        assert.ok(run.bytesRead <= limit, `${run.bytesRead} bytes read, at most ${limit} expected`);
      }
    });
  }

  it('short reads (size seen before the bytes) delay but do not change the result', async () => {
    const file = new Uint8Array(readFileSync(await cmafFixture('video')));
    const whole = indexBuffer(file);
    for (let seed = 100; seed < 110; seed++) {
      const { ix } = grow(file, seed, 8192, true);
      assert.deepEqual(ix.segments, whole.segments, `seed ${seed}`);
    }
  });

  it('a prefix never yields a segment whose mdat is cut', async () => {
    const file = new Uint8Array(readFileSync(await cmafFixture('video')));
    const whole = indexBuffer(file);
    for (const s of whole.segments) {
      const end = s.offset + s.size;
      assert.equal(indexBuffer(file.subarray(0, end - 1)).segments.length, whole.segments.indexOf(s));
      assert.equal(indexBuffer(file.subarray(0, end)).segments.length, whole.segments.indexOf(s) + 1);
    }
  });
});

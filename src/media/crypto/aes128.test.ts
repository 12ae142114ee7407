import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { newContentKey, parseMasterKey, unwrapKey, wrapKey } from '../../core/content-keys.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { decryptSegment, encryptedSize, encryptSegment, ivAttribute, segmentIv } from './aes128.ts';

const dir = mkdtempSync(join(tmpdir(), 'sc-aes128-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('HLS AES-128 whole-segment encryption', () => {
  it('is what openssl enc -d -aes-128-cbc turns back into the clear fMP4 bytes, with the IV of the segment number', () => {
    const mp4 = join(dir, 'clear.mp4');
    execFileSync('ffmpeg', [
      ...['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=30', '-t', '1', '-c:v', 'libx264'],
      ...['-movflags', '+frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4', '-y', mp4],
    ]);
    const clear = readFileSync(mp4);
    const { key } = newContentKey();
    for (const n of [0, 7, 2 ** 40 + 3]) {
      const iv = segmentIv(n);
      const enc = encryptSegment(clear, key, iv);
      assert.equal(enc.length, encryptedSize(clear.length));
      const file = join(dir, `seg${n}.enc`);
      writeFileSync(file, enc);
      const back = execFileSync('openssl', [
        ...['enc', '-d', '-aes-128-cbc', '-K', key.toString('hex'), '-iv', iv.toString('hex'), '-in', file],
      ]);
      assert.ok(back.equals(clear), `segment ${n}`);
      assert.ok(decryptSegment(enc, key, iv).equals(clear));
    }
    // The same segment, key and IV give the same bytes for every viewer (cacheable).
    assert.ok(encryptSegment(clear, key, segmentIv(3)).equals(encryptSegment(clear, key, segmentIv(3))));
    assert.equal(ivAttribute(segmentIv(1)), '0x00000000000000000000000000000001');
    assert.throws(() => decryptSegment(encryptSegment(clear, key, segmentIv(1)), newContentKey().key, segmentIv(1)));
    assert.throws(() => segmentIv(-1), SmoothcastError);
  });
});

describe('content keys wrapped by the master key', () => {
  const master = parseMasterKey('00'.repeat(32));
  it('unwraps only with the same master key and for the same owner', () => {
    const k = newContentKey();
    const wrapped = wrapKey(master, 'asset1', k);
    assert.match(wrapped, /^v1\./);
    assert.ok(!wrapped.includes(k.key.toString('base64url')), 'the key is not in the wrapped form');
    const back = unwrapKey(master, 'asset1', wrapped);
    assert.ok(back.key.equals(k.key) && back.kid.equals(k.kid));
    assert.throws(() => unwrapKey(master, 'asset2', wrapped), SmoothcastError);
    assert.throws(() => unwrapKey(parseMasterKey('11'.repeat(32)), 'asset1', wrapped), SmoothcastError);
    const tampered = `${wrapped.slice(0, -2)}${wrapped.endsWith('AA') ? 'AB' : 'AA'}`;
    assert.throws(() => unwrapKey(master, 'asset1', tampered), SmoothcastError);
    assert.notEqual(wrapKey(master, 'asset1', k), wrapped, 'a fresh IV each time');
  });

  it('takes the master key as 64 hex digits or base64 of 32 bytes, nothing else', () => {
    assert.equal(parseMasterKey(Buffer.alloc(32, 7).toString('base64')).length, 32);
    for (const bad of ['', 'abc', '00'.repeat(31), Buffer.alloc(16).toString('base64')]) {
      assert.throws(() => parseMasterKey(bad), SmoothcastError, bad);
    }
  });
});

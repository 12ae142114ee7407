// Common Encryption of real ffmpeg-made CMAF renditions, checked against readers we did not write: ffmpeg 5.1's
// decryptor (-decryption_key: 'cenc' and 'cbcs') and ffprobe, plus the reference decryptor of cenc-testing.ts.
//
// What ffmpeg 5.1 does here (measured): given init + ONE fragment it decrypts both schemes, and on a seekable file it
// takes the sample auxiliary information from saiz/saio (a saio pointing elsewhere breaks the decode, checked below);
// on a pipe it cannot seek and reads senc instead. A seekable file with several moofs decodes nothing in 5.1
// ("subsample size exceeds the packet size left": cenc_filter looks the encryption index up by the last moof read,
// fixed in later ffmpeg by get_frag_stream_info_from_pkt), so multi-fragment segments are checked through a pipe.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ffmpegFixture } from '../../../test/helpers/media.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { indexBuffer } from '../bmff/index.ts';
import { type IsoBox, iso } from '../bmff/isoboxer-testing.ts';
import { children } from '../bmff/reader.ts';
import { box, concat, fragment, init as syntheticInit, visualEntry } from '../bmff/testing.ts';
import {
  type CencParams,
  type CencScheme,
  constantIv,
  encryptInit,
  encryptSegment,
  MAX_CENC_SEGMENT,
  type TrackInfo,
  trackInfo,
} from './cenc.ts';
import { clearSamples, decryptSamples, readEncryptedSegment, readProtection } from './cenc-testing.ts';
import { kidUuid, playreadyKid, playreadyObject, psshBox, SYSTEM_IDS, uuidBytes, widevinePsshData } from './pssh.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'sc-cenc-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const KEY = Buffer.from('6d9a1f0c44b2e8a37c5e0b9d21f4a866', 'hex');
const KID = Buffer.from('a1b2c3d4e5f60718293a4b5c6d7e8f90', 'hex');
const WRONG_KEY = Buffer.from('6d9a1f0c44b2e8a37c5e0b9d21f4a867', 'hex');
const SCHEMES: CencScheme[] = ['cenc', 'cbcs'];
const MOVFLAGS = '+frag_keyframe+empty_moov+default_base_moof';
const H264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-g', '25', '-sc_threshold', '0'];

interface Rendition {
  name: string;
  ivTag: number;
  init: Buffer;
  info: TrackInfo;
  /** Clear segments, each one or more moof+mdat starting on a sync sample. */
  segments: Buffer[];
  /** Moofs per segment. */
  parts: number;
}

/** Splits a clear CMAF file into its init and segments that each start with a keyframe (1..N moof+mdat). */
function rendition(name: string, ivTag: number, file: Buffer): Rendition {
  const { track, segments } = indexBuffer(file);
  const init = file.subarray(0, track.initSize);
  const out: Buffer[] = [];
  let parts = 0;
  for (const s of segments) {
    const bytes = file.subarray(s.offset, s.offset + s.size);
    if (s.startsWithKeyframe || out.length === 0) {
      out.push(bytes);
      parts = Math.max(parts, 1);
    } else {
      out[out.length - 1] = Buffer.concat([out[out.length - 1]!, bytes]);
      parts = 2;
    }
  }
  return { name, ivTag, init, info: trackInfo(init), segments: out, parts };
}

let video: Rendition; // one moof+mdat per 1 s segment, B-frames, trun v0
let audio: Rendition; // AAC-LC, 1 s fragments
let videoParts: Rendition; // two moof+mdat per 1 s segment (+cmaf: trun v1, negative composition offsets)

before(async () => {
  const [v, a, vp] = await Promise.all([
    ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25:duration=4', ...H264],
        ...['-movflags', MOVFLAGS, '-f', 'mp4'],
      ],
      'mp4',
    ),
    ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=4', '-c:a', 'aac', '-ac', '2'],
        ...['-frag_duration', '1000000', '-movflags', MOVFLAGS, '-f', 'mp4'],
      ],
      'mp4',
    ),
    ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'testsrc2=size=256x144:rate=25:duration=3', ...H264],
        ...['-frag_duration', '500000', '-movflags', `${MOVFLAGS}+cmaf`, '-f', 'mp4'],
      ],
      'mp4',
    ),
  ]);
  video = rendition('video', 0, readFileSync(v));
  audio = rendition('audio', 1, readFileSync(a));
  videoParts = rendition('video in parts', 2, readFileSync(vp));
  assert.equal(video.segments.length, 4);
  assert.ok(audio.segments.length >= 4);
  assert.equal(videoParts.parts, 2, 'the parts fixture has segments of two moof+mdat');
});

/** The moof+mdat pairs of a clear segment. */
function splitFragments(seg: Buffer): Buffer[] {
  const boxes = [...children(seg, 0, seg.length, 'segment')];
  const out: Buffer[] = [];
  boxes.forEach((b, i) => {
    if (b.type === 'moof') out.push(seg.subarray(b.start, boxes[i + 1]!.end));
  });
  return out;
}

const params = (r: Rendition, scheme: CencScheme, key = KEY): CencParams => ({ scheme, kid: KID, key, ivTag: r.ivTag });

let fileCount = 0;

/** ffmpeg's framemd5 of `bytes`, decrypted with `key` when given; from a file (seekable) or through a pipe. */
async function framemd5(bytes: Buffer, key?: Buffer, pipe = false): Promise<{ frames: string; lines: number }> {
  const args = ['-v', 'error', ...(key ? ['-decryption_key', key.toString('hex')] : [])];
  let stdout: string;
  if (pipe) {
    stdout = await new Promise<string>((resolve, reject) => {
      const child = spawn('ffmpeg', [...args, '-f', 'mp4', '-i', 'pipe:0', '-f', 'framemd5', '-'], {
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
      });
      child.on('error', reject);
      child.on('close', () => resolve(out));
      child.stdin.on('error', () => {}); // ffmpeg may stop reading a stream it cannot decode
      child.stdin.end(bytes);
    });
  } else {
    const file = join(dir, `in${fileCount++}.mp4`);
    writeFileSync(file, bytes);
    try {
      ({ stdout } = await run('ffmpeg', [...args, '-i', file, '-f', 'framemd5', '-'], { maxBuffer: 64 << 20 }));
    } catch (err) {
      stdout = (err as { stdout?: string }).stdout ?? '';
    }
  }
  return { frames: stdout, lines: stdout.split('\n').filter((l) => l && !l.startsWith('#')).length };
}

/** Runs `jobs` two at a time (the test machines have two cores). */
async function pooled<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all([worker(), worker()]);
  return out;
}

/** Every segment of `r`: init + one encrypted segment decrypted by ffmpeg == init + the clear segment. */
async function checkWithFfmpeg(r: Rendition, scheme: CencScheme, pipe: boolean): Promise<void> {
  const p = params(r, scheme);
  const init = encryptInit(r.init, p, [psshBox(SYSTEM_IDS.common, [KID])]);
  await pooled(
    r.segments.map((seg, n) => async () => {
      const [clear, decrypted] = await Promise.all([
        framemd5(Buffer.concat([r.init, seg]), undefined, pipe),
        framemd5(Buffer.concat([init, encryptSegment(seg, r.info, p, n)]), KEY, pipe),
      ]);
      assert.ok(clear.lines > 0, `${r.name} segment ${n}: the clear segment decodes`);
      assert.equal(decrypted.frames, clear.frames, `${r.name} ${scheme} segment ${n}`);
    }),
  );
}

describe('CENC decrypted by ffmpeg 5.1 (-decryption_key)', () => {
  for (const scheme of SCHEMES) {
    it(`${scheme}: every video and audio segment, init + one segment from a file, decodes to the clear frames`, async () => {
      await checkWithFfmpeg(video, scheme, false);
      await checkWithFfmpeg(audio, scheme, false);
    });
  }

  it('segments of two moof+mdat (and the whole rendition) decode through a pipe, both schemes', async () => {
    for (const scheme of SCHEMES) {
      await checkWithFfmpeg(videoParts, scheme, true);
      const p = params(videoParts, scheme);
      const whole = Buffer.concat([
        encryptInit(videoParts.init, p, []),
        ...videoParts.segments.map((s, n) => encryptSegment(s, videoParts.info, p, n)),
      ]);
      const [clear, decrypted] = await Promise.all([
        framemd5(Buffer.concat([videoParts.init, ...videoParts.segments]), undefined, true),
        framemd5(whole, KEY, true),
      ]);
      assert.equal(clear.lines, 75);
      assert.equal(decrypted.frames, clear.frames, scheme);
    }
  });

  it('discriminates: a wrong key, no key or a saio pointing elsewhere does not give the clear frames', async () => {
    const jobs: (() => Promise<void>)[] = [];
    for (const r of [video, audio]) {
      for (const scheme of SCHEMES) {
        jobs.push(async () => {
          const p = params(r, scheme);
          const seg = r.segments[1]!;
          const init = encryptInit(r.init, p, []);
          const enc = encryptSegment(seg, r.info, p, 1);
          const clear = await framemd5(Buffer.concat([r.init, seg]));
          const wrong = await framemd5(Buffer.concat([init, enc]), WRONG_KEY);
          assert.notEqual(wrong.frames, clear.frames, `${r.name} ${scheme}: wrong key`);
          const none = await framemd5(Buffer.concat([init, enc]));
          assert.notEqual(none.frames, clear.frames, `${r.name} ${scheme}: no key`);
          const saio = enc.indexOf('saio');
          if (saio < 0) return; // 'cbcs' audio has none
          const moved = Buffer.from(enc);
          moved.writeUInt32BE(moved.readUInt32BE(saio + 12) + 8, saio + 12);
          const off = await framemd5(Buffer.concat([init, moved]), KEY);
          assert.notEqual(off.frames, clear.frames, `${r.name} ${scheme}: ffmpeg follows saio`);
        });
      }
    }
    await pooled(jobs);
  });
});

describe('CENC against the reference decryptor (cenc-testing.ts)', () => {
  it('gives back every clear sample of every segment, both schemes, and changes the protected bytes', () => {
    for (const r of [video, audio, videoParts]) {
      for (const scheme of SCHEMES) {
        const p = params(r, scheme);
        const prot = readProtection(encryptInit(r.init, p, []));
        r.segments.forEach((seg, n) => {
          const enc = encryptSegment(seg, r.info, p, n);
          const clear = clearSamples(seg);
          const encrypted = clearSamples(enc);
          assert.deepEqual(decryptSamples(enc, prot, KEY), clear, `${r.name} ${scheme} segment ${n}`);
          assert.equal(encrypted.length, clear.length);
          const changed = encrypted.filter((s, i) => !s.equals(clear[i]!)).length;
          assert.ok(
            changed >= clear.length - 1,
            `${r.name} ${scheme} segment ${n}: ${changed}/${clear.length} changed`,
          );
          assert.notDeepEqual(decryptSamples(enc, prot, WRONG_KEY), clear);
          // The same with a styp before each moof (saio and data offsets are relative to the moof, not the segment).
          const styp = box('styp', Buffer.from('msdh'), Buffer.alloc(4), Buffer.from('msdhmsix'));
          const prefixed = Buffer.concat(splitFragments(seg).flatMap((f) => [styp, f]));
          const encPrefixed = encryptSegment(prefixed, r.info, p, n);
          assert.deepEqual(decryptSamples(encPrefixed, prot, KEY), clear, `${r.name} ${scheme} segment ${n} with styp`);
          for (const t of readEncryptedSegment(encPrefixed, prot.perSampleIvSize)) {
            if (t.saioTarget !== undefined) assert.equal(t.saioTarget, t.sencData);
          }
        });
      }
    }
  });
});

describe('CENC IVs, subsamples and determinism', () => {
  it("'cenc': IV = ivTag | segment | sample index, unique over every segment of both renditions under one key", () => {
    const seen = new Set<string>();
    let total = 0;
    for (const r of [video, audio]) {
      r.segments.forEach((seg, n) => {
        let index = 0;
        for (const traf of readEncryptedSegment(encryptSegment(seg, r.info, params(r, 'cenc'), n), 8)) {
          for (const a of traf.aux) {
            const expected = Buffer.alloc(8);
            expected.writeUInt8(r.ivTag, 0);
            expected.writeUIntBE(n, 1, 3);
            expected.writeUInt32BE(index++, 4);
            assert.deepEqual(a.iv, expected);
            seen.add(a.iv.toString('hex'));
            total++;
          }
        }
      });
    }
    assert.ok(total > 250);
    assert.equal(seen.size, total, 'no IV twice');
  });

  it("'cenc' video: protected ranges are whole 16-byte blocks, NAL length prefixes and headers stay clear", () => {
    let protectedRanges = 0;
    for (const r of [video, videoParts]) {
      r.segments.forEach((seg, n) => {
        const enc = encryptSegment(seg, r.info, params(r, 'cenc'), n);
        for (const traf of readEncryptedSegment(enc, 8)) {
          traf.aux.forEach((a, i) => {
            const sample = traf.samples[i]!;
            let covered = 0;
            for (const [clear, prot] of a.subsamples) {
              assert.equal(prot % 16, 0, `protected size ${prot}`);
              assert.ok(clear <= 0xffff);
              // The clear part always holds at least the 4-byte length prefix and the NAL header byte.
              if (prot > 0) assert.ok(clear >= r.info.nalLengthSize + 1);
              if (prot > 0) protectedRanges++;
              covered += clear + prot;
            }
            assert.equal(covered, sample.size);
          });
        }
      });
    }
    assert.ok(protectedRanges > 150);
  });

  it("'cbcs' video: pattern 1:9 in tenc, no per-sample IV, at least the first 32 NAL bytes clear", () => {
    const p = params(video, 'cbcs');
    const prot = readProtection(encryptInit(video.init, p, []));
    assert.equal(prot.cryptByteBlock, 1);
    assert.equal(prot.skipByteBlock, 9);
    assert.equal(prot.perSampleIvSize, 0);
    for (const traf of readEncryptedSegment(encryptSegment(video.segments[0]!, video.info, p, 0), 0)) {
      for (const a of traf.aux) {
        assert.equal(a.iv.length, 0);
        for (const [clear, protectedSize] of a.subsamples) {
          if (protectedSize > 0) assert.ok(clear >= 4 + 32, `clear ${clear}`);
          assert.equal(protectedSize % 16, 0);
        }
      }
    }
  });

  it('is deterministic: the same input gives the same bytes; the constant IV depends on key and ivTag', () => {
    for (const r of [video, audio]) {
      for (const scheme of SCHEMES) {
        const p = params(r, scheme);
        const pssh = [psshBox(SYSTEM_IDS.widevine, [], widevinePsshData([KID], scheme))];
        assert.ok(encryptInit(r.init, p, pssh).equals(encryptInit(r.init, { ...p, kid: Buffer.from(KID) }, pssh)));
        const a = encryptSegment(r.segments[2]!, r.info, p, 2);
        const b = encryptSegment(Buffer.from(r.segments[2]!), trackInfo(Buffer.from(r.init)), { ...p }, 2);
        assert.ok(a.equals(b), `${r.name} ${scheme}`);
        assert.ok(!a.equals(encryptSegment(r.segments[2]!, r.info, { ...p, ivTag: 7 }, 2)), 'ivTag matters');
      }
    }
    const civ = constantIv({ key: KEY, ivTag: 0 });
    assert.equal(civ.length, 16);
    assert.ok(civ.equals(constantIv({ key: Buffer.from(KEY), ivTag: 0 })));
    assert.ok(!civ.equals(constantIv({ key: KEY, ivTag: 1 })));
    assert.ok(!civ.equals(constantIv({ key: WRONG_KEY, ivTag: 0 })));
    assert.ok(readProtection(encryptInit(video.init, params(video, 'cbcs'), [])).constantIv?.equals(civ));
  });

  it('is fast: whole renditions encrypt at tens of MB/s at least (per-sample cost, not per byte)', (t) => {
    const all = [...video.segments, ...audio.segments, ...videoParts.segments];
    const bytes = all.reduce((n, s) => n + s.length, 0);
    for (const scheme of SCHEMES) {
      const t0 = performance.now();
      for (let round = 0; round < 5; round++) {
        for (const r of [video, audio, videoParts]) {
          for (let n = 0; n < r.segments.length; n++) encryptSegment(r.segments[n]!, r.info, params(r, scheme), n);
        }
      }
      const ms = performance.now() - t0;
      const mbps = (5 * bytes) / 1e6 / (ms / 1000);
      t.diagnostic(`${scheme}: ${mbps.toFixed(0)} MB/s, ${(ms / 5 / all.length).toFixed(2)} ms per segment`);
      assert.ok(mbps > 20, `${scheme}: ${mbps.toFixed(0)} MB/s`);
    }
  });
});

describe('CENC structure', () => {
  it('init: encv/enca with sinf(frma, schm, schi/tenc) and the pssh boxes, read back by ffprobe and codem-isoboxer', async () => {
    for (const r of [video, audio]) {
      for (const scheme of SCHEMES) {
        const pssh = [
          psshBox(SYSTEM_IDS.common, [KID]),
          psshBox(SYSTEM_IDS.widevine, [], widevinePsshData([KID], scheme)),
        ];
        const enc = encryptInit(r.init, params(r, scheme), pssh);
        const prot = readProtection(enc);
        assert.equal(prot.entryType, r.info.kind === 'video' ? 'encv' : 'enca');
        assert.equal(prot.originalFormat, r.info.sampleEntry);
        assert.equal(prot.scheme, scheme);
        assert.equal(prot.schemeVersion, 0x00010000);
        assert.equal(prot.isProtected, 1);
        assert.deepEqual(prot.kid, KID);
        assert.deepEqual(prot.pssh, pssh);
        if (scheme === 'cenc') {
          assert.equal(prot.tencVersion, 0);
          assert.equal(prot.perSampleIvSize, 8);
          assert.equal(prot.constantIv, undefined);
        } else {
          assert.equal(prot.tencVersion, 1);
          assert.equal(prot.perSampleIvSize, 0);
          assert.equal(prot.constantIv?.length, 16);
          assert.deepEqual([prot.cryptByteBlock, prot.skipByteBlock], r.info.kind === 'video' ? [1, 9] : [0, 0]);
        }
        // The file ends where the moov does: every enclosing size was fixed.
        assert.equal(prot.moovSize + enc.indexOf('moov') - 4, enc.length);
        // codem-isoboxer (dash.js's reader) walks the grown boxes down to the sample entry.
        const parsed = iso(new Uint8Array(enc));
        const entry = (parsed.fetch('stsd')?.entries as IsoBox[] | undefined)?.[0];
        assert.equal(entry?.type, prot.entryType);
        if (r.info.kind === 'video') assert.equal(entry?.width, 320);
        else assert.equal(entry?.channelcount, 2);
        assert.equal(parsed.fetchAll('pssh').length, 2);
      }
      const file = join(dir, `${r.name}-init.mp4`);
      writeFileSync(file, encryptInit(r.init, params(r, 'cenc'), [psshBox(SYSTEM_IDS.common, [KID])]));
      const probe = await run('ffprobe', ['-v', 'trace', '-show_streams', '-of', 'json', file], {
        maxBuffer: 16 << 20,
      });
      const stream = (JSON.parse(probe.stdout) as { streams: Record<string, unknown>[] }).streams[0]!;
      assert.equal(stream.codec_name, r.info.kind === 'video' ? 'h264' : 'aac');
      if (r.info.kind === 'video') assert.deepEqual([stream.width, stream.height], [320, 180]);
      else assert.equal(stream.sample_rate, '48000');
      assert.match(probe.stderr, new RegExp(`4CC=${r.info.kind === 'video' ? 'encv' : 'enca'}`));
      assert.match(probe.stderr, /type:'tenc' parent:'schi'/);
      assert.match(probe.stderr, /type:'pssh' parent:'moov'/);
      assert.deepEqual(stream.side_data_list, [{ side_data_type: 'Encryption initialization data' }]);
    }
  });

  it('segment: saiz, saio, senc end each traf; saio points at the first senc entry; data_offset at the mdat payload', () => {
    for (const r of [video, audio, videoParts]) {
      for (const scheme of SCHEMES) {
        const ivSize = scheme === 'cenc' ? 8 : 0;
        r.segments.forEach((seg, n) => {
          const enc = encryptSegment(seg, r.info, params(r, scheme), n);
          const trafs = readEncryptedSegment(enc, ivSize);
          assert.equal(
            trafs.length,
            [...children(seg, 0, seg.length, 'segment')].filter((b) => b.type === 'moof').length,
          );
          const emptyAux = scheme === 'cbcs' && r.info.kind === 'audio';
          for (const t of trafs) {
            assert.deepEqual(t.boxOrder.slice(-3), emptyAux ? ['tfdt', 'trun', 'senc'] : ['saiz', 'saio', 'senc']);
            assert.equal(t.dataOffsetTarget, t.mdatPayload, 'trun data_offset → the mdat payload');
            assert.equal(t.sencFlags, r.info.kind === 'video' ? 2 : 0);
            if (emptyAux) {
              assert.equal(t.saioTarget, undefined);
              assert.ok(t.entrySizes.every((s) => s === 0));
              continue;
            }
            assert.equal(t.saioTarget, t.sencData, 'saio → the first senc entry (relative to the moof)');
            assert.deepEqual(t.saizSizes, t.entrySizes);
            if (r.info.kind === 'audio') assert.ok(t.entrySizes.every((s) => s === 8));
          }
          // Everything is still a well-formed fragment the indexer reads, with the same samples.
          const reindexed = indexBuffer(Buffer.concat([r.init, enc]));
          assert.equal(
            reindexed.segments.reduce((k, s) => k + s.samples, 0),
            clearSamples(seg).length,
          );
        });
      }
    }
  });
});

describe('CENC refusals', () => {
  const code = (f: () => unknown, expected: string, message?: RegExp) =>
    assert.throws(f, (err: unknown) => {
      assert.ok(err instanceof SmoothcastError, String(err));
      assert.equal(err.code, expected, err.message);
      if (message) assert.match(err.message, message);
      return true;
    });

  it('refuses codecs other than H.264 and AAC, and already encrypted input, with ENCRYPTION_UNSUPPORTED', () => {
    const hvcC = Uint8Array.from([
      1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0,
    ]);
    const hevc = syntheticInit({ entry: visualEntry('hvc1', hvcC, 'hvcC') });
    code(() => trackInfo(hevc), 'ENCRYPTION_UNSUPPORTED', /hvc1/);
    code(() => encryptInit(hevc, params(video, 'cenc'), []), 'ENCRYPTION_UNSUPPORTED');
    const encInit = encryptInit(video.init, params(video, 'cenc'), []);
    code(() => trackInfo(encInit), 'ENCRYPTION_UNSUPPORTED', /encrypted/);
    const encSeg = encryptSegment(video.segments[0]!, video.info, params(video, 'cenc'), 0);
    code(() => encryptSegment(encSeg, video.info, params(video, 'cenc'), 0), 'ENCRYPTION_UNSUPPORTED', /already/);
    code(() => trackInfo(video.segments[0]!), 'ENCRYPTION_UNSUPPORTED');
  });

  it('refuses broken segments with ENCRYPTION_UNSUPPORTED', () => {
    const info = trackInfo(syntheticInit({ trex: { size: 10 } }));
    // testing.ts fills sample data with 0xab: as H.264, a NAL unit length of 0xabababab runs past the sample.
    const frag = fragment({ tfdt: 0, samples: [{ size: 20 }, { size: 20 }] });
    code(() => encryptSegment(frag, info, params(video, 'cenc'), 0), 'ENCRYPTION_UNSUPPORTED', /runs past/);
    const audioInfo: TrackInfo = { ...info, kind: 'audio', nalLengthSize: 0 };
    assert.equal(encryptSegment(frag, audioInfo, params(video, 'cenc'), 0).length, frag.length + 17 + 20 + 16 + 16);
    // A trun whose samples run past the mdat.
    const long = fragment({ tfdt: 0, samples: [{ size: 20 }, { size: 20 }] });
    const trun = Buffer.from(long).indexOf('trun');
    Buffer.from(long.buffer, long.byteOffset).writeUInt32BE(21, trun + 16);
    code(() => encryptSegment(long, audioInfo, params(video, 'cenc'), 0), 'ENCRYPTION_UNSUPPORTED', /outside the mdat/);
    code(
      () => encryptSegment(concat(frag, box('free')), audioInfo, params(audio, 'cenc'), 0),
      'ENCRYPTION_UNSUPPORTED',
    );
    code(() => encryptSegment(box('free'), audioInfo, params(audio, 'cenc'), 0), 'ENCRYPTION_UNSUPPORTED', /no moof/);
    code(() => encryptSegment(frag.subarray(0, 40), audioInfo, params(audio, 'cenc'), 0), 'ENCRYPTION_UNSUPPORTED');
    const otherTrack = fragment({ tfdt: 0, trackId: 2, samples: [{ size: 20 }] });
    code(() => encryptSegment(otherTrack, audioInfo, params(audio, 'cenc'), 0), 'ENCRYPTION_UNSUPPORTED', /track 2/);
    // 'cenc' IVs hold 3 bytes of segment number; 'cbcs' has no per-sample IV and takes any.
    code(() => encryptSegment(frag, audioInfo, params(audio, 'cenc'), MAX_CENC_SEGMENT + 1), 'ENCRYPTION_UNSUPPORTED');
    assert.ok(encryptSegment(frag, audioInfo, params(audio, 'cbcs'), MAX_CENC_SEGMENT + 1).length > frag.length);
  });

  it('refuses bad parameters with INTERNAL', () => {
    const seg = audio.segments[0]!;
    const p = params(audio, 'cenc');
    code(() => encryptSegment(seg, audio.info, { ...p, key: KEY.subarray(0, 15) }, 0), 'INTERNAL');
    code(() => encryptSegment(seg, audio.info, { ...p, kid: Buffer.alloc(17) }, 0), 'INTERNAL');
    code(() => encryptSegment(seg, audio.info, { ...p, ivTag: 256 }, 0), 'INTERNAL');
    code(() => encryptSegment(seg, audio.info, { ...p, scheme: 'cbc1' as CencScheme }, 0), 'INTERNAL');
    code(() => encryptSegment(seg, audio.info, p, -1), 'INTERNAL');
    code(() => encryptSegment(seg, audio.info, p, 1.5), 'INTERNAL');
    code(() => encryptInit(audio.init, p, [Buffer.from('not a pssh box, not at all')]), 'INTERNAL');
  });
});

describe('pssh boxes and their system data', () => {
  /** A minimal protobuf reader: (field, wire type, value) triples of varint (0) and length-delimited (2) fields. */
  function protobuf(bytes: Uint8Array): [number, number, number | Buffer][] {
    const out: [number, number, number | Buffer][] = [];
    let i = 0;
    const varint = () => {
      let v = 0;
      let scale = 1;
      for (;;) {
        const b = bytes[i++]!;
        v += (b & 0x7f) * scale;
        scale *= 128;
        if (b < 0x80) return v;
      }
    };
    while (i < bytes.length) {
      const tag = varint();
      const wire = tag & 7;
      if (wire === 0) out.push([tag >> 3, 0, varint()]);
      else if (wire === 2) {
        const n = varint();
        out.push([tag >> 3, 2, Buffer.from(bytes.subarray(i, i + n))]);
        i += n;
      } else throw new Error(`wire type ${wire}`);
    }
    return out;
  }

  it('writes version 1 with KIDs, version 0 without, and the system IDs as UUID bytes', () => {
    const kid2 = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const v1 = psshBox(SYSTEM_IDS.common, [KID, kid2]);
    assert.equal(v1.length, 8 + 4 + 16 + 4 + 32 + 4);
    assert.equal(v1.readUInt32BE(0), v1.length);
    assert.equal(v1.toString('latin1', 4, 8), 'pssh');
    assert.equal(v1.readUInt32BE(8), 0x01000000);
    assert.equal(v1.subarray(12, 28).toString('hex'), '1077efecc0b24d02ace33c1e52e2fb4b');
    assert.equal(v1.readUInt32BE(28), 2);
    assert.deepEqual([v1.subarray(32, 48), v1.subarray(48, 64)], [KID, kid2]);
    assert.equal(v1.readUInt32BE(64), 0);
    const data = Buffer.from('opaque');
    const v0 = psshBox(SYSTEM_IDS.playready, [], data);
    assert.equal(v0.readUInt32BE(8), 0);
    assert.equal(v0.subarray(12, 28).toString('hex'), '9a04f07998404286ab92e65be0885f95');
    assert.equal(v0.readUInt32BE(28), data.length);
    assert.deepEqual(v0.subarray(32), data);
    assert.equal(uuidBytes(SYSTEM_IDS.widevine).toString('hex'), 'edef8ba979d64acea3c827dcd51d21ed');
    assert.equal(uuidBytes(SYSTEM_IDS.clearkey).toString('hex'), 'e2719d58a985b3c9781ab030af78d30e');
    assert.equal(kidUuid(KID), 'a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90');
    assert.throws(() => uuidBytes('1077efec-c0b2-4d02-ace3'), SmoothcastError);
    assert.throws(() => psshBox(SYSTEM_IDS.common, [Buffer.alloc(15)]), SmoothcastError);
  });

  it('Widevine: key_id (field 2) per KID and protection_scheme (field 9) as the fourcc', () => {
    const kid2 = Buffer.alloc(16, 7);
    for (const [scheme, fourcc] of [
      ['cenc', 0x63656e63],
      ['cbcs', 0x63626373],
    ] as const) {
      assert.deepEqual(protobuf(widevinePsshData([KID, kid2], scheme)), [
        [2, 2, KID],
        [2, 2, kid2],
        [9, 0, fourcc],
      ]);
    }
  });

  it('PlayReady: a PlayReady Object with a UTF-16LE WRMHEADER, KID in GUID byte order', () => {
    const kid = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const guid = Buffer.from('33221100554477668899aabbccddeeff', 'hex').toString('base64');
    assert.equal(playreadyKid(kid), guid);
    const url = 'https://licence.example/pr?a=1&b=2';
    for (const scheme of SCHEMES) {
      const pro = playreadyObject(kid, url, scheme);
      assert.equal(pro.readUInt32LE(0), pro.length);
      assert.equal(pro.readUInt16LE(4), 1, 'one record');
      assert.equal(pro.readUInt16LE(6), 1, 'rights management header');
      assert.equal(pro.readUInt16LE(8), pro.length - 10);
      const xml = pro.subarray(10).toString('utf16le');
      assert.ok(xml.startsWith('<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader"'));
      assert.ok(xml.includes('<LA_URL>https://licence.example/pr?a=1&#38;b=2</LA_URL>'), xml);
      if (scheme === 'cenc') {
        assert.ok(xml.includes('version="4.0.0.0"'));
        assert.ok(xml.includes(`<KID>${guid}</KID>`));
        assert.ok(xml.includes('<ALGID>AESCTR</ALGID>'));
      } else {
        assert.ok(xml.includes('version="4.3.0.0"'));
        assert.ok(xml.includes(`<KID ALGID="AESCBC" VALUE="${guid}"></KID>`));
      }
    }
    assert.ok(!playreadyObject(kid).subarray(10).toString('utf16le').includes('LA_URL'));
  });
});

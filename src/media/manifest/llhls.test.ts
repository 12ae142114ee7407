import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmoothcastError } from '../../core/errors.ts';
import { LiveTimeline } from '../live/parts.ts';
import { fragments, ladderVideo, parseLive, rng } from '../live/testing.ts';
import {
  blockingDecision,
  type LivePlaylistOptions,
  type LiveUrlScheme,
  parseBlockingRequest,
  renditionReport,
  writeLivePlaylist,
} from './llhls.ts';

const V = 15360;
const urls: LiveUrlScheme = {
  init: () => 'init.mp4',
  segment: (m) => `s${m}.m4s`,
  part: (m, i) => `p${m}.${i}.m4s`,
};
const r = { id: 'v0', track: { timescale: V, initSize: 800 } };
const T = Date.UTC(2025, 0, 2, 3, 4, 5, 6);
const base: LivePlaylistOptions = { dvrSeconds: 0, ingestStartWallClockMs: T, targetDuration: 2 };

function timeline(n: number, of = ladderVideo(Math.ceil(n / 6) + 1)): LiveTimeline {
  const t = new LiveTimeline({ timescale: V });
  t.append(of.slice(0, n));
  return t;
}

const parts = (m: number, n: number, last = 6) =>
  Array.from({ length: n }, (_, i) => {
    const d = i < 5 ? '0.366667' : '0.166667';
    return `#EXT-X-PART:DURATION=${d},URI="p${m}.${i}.m4s"${i === 0 ? ',INDEPENDENT=YES' : ''}`;
  }).slice(0, last);

describe('writeLivePlaylist', () => {
  it('writes an LL-HLS playlist: part target, server control, parts of the last segments, a hint, reports', () => {
    const t = timeline(33); // five complete segments and three parts of the sixth
    const rr = [{ uri: '../a0/index.m3u8', lastMsn: 5, lastPart: 2 }];
    assert.equal(
      writeLivePlaylist(r, t, urls, { ...base, renditionReports: rr }),
      [
        '#EXTM3U',
        '#EXT-X-VERSION:9',
        '#EXT-X-TARGETDURATION:2',
        '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.10001',
        '#EXT-X-PART-INF:PART-TARGET=0.36667',
        '#EXT-X-MEDIA-SEQUENCE:0',
        '#EXT-X-DISCONTINUITY-SEQUENCE:0',
        '#EXT-X-INDEPENDENT-SEGMENTS',
        '#EXT-X-MAP:URI="init.mp4"',
        '#EXT-X-PROGRAM-DATE-TIME:2025-01-02T03:04:05.006Z',
        // Segments 0 and 1 end more than three target durations before the edge (11.1 s): no parts.
        '#EXTINF:2,',
        's0.m4s',
        '#EXTINF:2,',
        's1.m4s',
        ...parts(2, 6),
        '#EXTINF:2,',
        's2.m4s',
        ...parts(3, 6),
        '#EXTINF:2,',
        's3.m4s',
        ...parts(4, 6),
        '#EXTINF:2,',
        's4.m4s',
        ...parts(5, 3),
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p5.3.m4s"',
        '#EXT-X-RENDITION-REPORT:URI="../a0/index.m3u8",LAST-MSN=5,LAST-PART=2',
        '',
      ].join('\n'),
    );
    assert.deepEqual(renditionReport('x.m3u8', t), { uri: 'x.m3u8', lastMsn: 5, lastPart: 2 });
    assert.equal(renditionReport('x.m3u8', new LiveTimeline({ timescale: V })), undefined);
  });

  it('addresses init, parts, segments and the hint as byte ranges of the one growing file', () => {
    const p = writeLivePlaylist(r, timeline(33), urls, { ...base, byteRange: { uri: 'v0.mp4' } }).split('\n');
    assert.ok(p.includes('#EXT-X-MAP:URI="v0.mp4",BYTERANGE="800@0"'));
    assert.ok(p.includes('#EXT-X-BYTERANGE:6000@6800'));
    assert.ok(p.includes('#EXT-X-PART:DURATION=0.366667,URI="v0.mp4",BYTERANGE="1000@30800",INDEPENDENT=YES'));
    assert.equal(p.filter((l) => l === 'v0.mp4').length, 5);
    assert.ok(p.includes('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="v0.mp4",BYTERANGE-START=33800'));
  });

  it('ends with EXT-X-ENDLIST, without blocking reload or a preload hint', () => {
    const t = timeline(33);
    t.end();
    const p = parseLive(writeLivePlaylist(r, t, urls, base));
    assert.equal(p.tags.get('#EXT-X-SERVER-CONTROL'), 'CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.10001');
    assert.equal(p.tags.has('#EXT-X-PRELOAD-HINT'), false);
    assert.equal(p.lines.at(-2), '#EXT-X-ENDLIST');
    assert.deepEqual(p.segments.at(-1), {
      msn: 5,
      parts: p.segments.at(-1)!.parts,
      discontinuity: false,
      duration: 1.1,
      uri: 's5.m4s',
    });
  });

  it('answers _HLS_skip with a delta update that skips what lies beyond CAN-SKIP-UNTIL', () => {
    const t = timeline(20 * 6 + 2);
    const full = writeLivePlaylist(r, t, urls, base);
    const delta = writeLivePlaylist(r, t, urls, { ...base, skip: true });
    // Edge 40.73 s; the skip boundary is 12 s: segments ending at or before 28.73 s (msn 0–13) go.
    assert.ok(delta.includes('\n#EXT-X-SKIP:SKIPPED-SEGMENTS=14\n'));
    const f = parseLive(full);
    const d = parseLive(delta);
    assert.equal(d.tags.get('#EXT-X-MEDIA-SEQUENCE'), '0');
    assert.equal(d.skipped + d.segments.length, f.segments.length);
    assert.deepEqual(
      d.segments.map(({ dateTime: _, ...s }) => s),
      f.segments.slice(14).map(({ dateTime: _, ...s }) => s),
    );
    assert.equal(d.segments[0]!.dateTime, '2025-01-02T03:04:33.006Z', 'the first segment after the skip is dated');
    // Nothing to skip: no EXT-X-SKIP tag at all.
    assert.equal(
      writeLivePlaylist(r, timeline(33), urls, { ...base, skip: true }),
      writeLivePlaylist(r, timeline(33), urls, base),
    );
  });

  it('slides the DVR window over a discontinuity and counts the discontinuity sequence', () => {
    const before = ladderVideo(3);
    const after = ladderVideo(6, 100 * V).map((f) => ({ ...f, offset: f.offset + 18_000 }));
    const t = new LiveTimeline({ timescale: V });
    t.append([...before, ...after.slice(0, 7)]);
    const dvr = { ...base, dvrSeconds: 6 };
    let p = parseLive(writeLivePlaylist(r, t, urls, dvr));
    assert.equal(p.tags.get('#EXT-X-DISCONTINUITY-SEQUENCE'), '0');
    assert.deepEqual(
      p.segments.map((s) => [s.msn, s.discontinuity, s.dateTime]),
      [
        // Six seconds of EXTINF back from the edge (§6.2.2), however long the gap the media time spans.
        [1, false, '2025-01-02T03:04:07.006Z'],
        [2, false, undefined],
        [3, true, '2025-01-02T03:05:45.006Z'],
        [4, false, undefined],
      ],
    );
    t.append(after.slice(7));
    p = parseLive(writeLivePlaylist(r, t, urls, dvr));
    assert.equal(p.tags.get('#EXT-X-MEDIA-SEQUENCE'), '5');
    assert.equal(p.tags.get('#EXT-X-DISCONTINUITY-SEQUENCE'), '1');
    assert.ok(p.segments.every((s) => !s.discontinuity));
  });

  it('keeps the target durations it has announced and guards its inputs', () => {
    const long = fragments([
      { duration: 3 * V, key: true },
      { duration: V, key: true },
    ]);
    const t = new LiveTimeline({ timescale: V });
    t.append(long);
    const p = parseLive(writeLivePlaylist(r, t, urls, { ...base, partTarget: 0.5 }));
    assert.equal(p.tags.get('#EXT-X-TARGETDURATION'), '3', 'grows past the nominal value for a longer segment');
    assert.equal(p.tags.get('#EXT-X-PART-INF'), 'PART-TARGET=3.00000');
    const short = parseLive(writeLivePlaylist(r, timeline(3), urls, { ...base, partTarget: 0.5 }));
    assert.equal(short.tags.get('#EXT-X-PART-INF'), 'PART-TARGET=0.50000', 'the nominal part target is a floor');
    assert.throws(
      () => writeLivePlaylist(r, new LiveTimeline({ timescale: V }), urls, base),
      (e: unknown) => e instanceof SmoothcastError && e.code === 'ASSET_NOT_PLAYABLE',
    );
    assert.throws(() => writeLivePlaylist({ id: 'a', track: { timescale: 48000, initSize: 1 } }, t, urls, base));
    assert.throws(() => writeLivePlaylist(r, t, { ...urls, segment: () => 'a\nb' }, base), /invalid playlist URI/);
    assert.throws(() => writeLivePlaylist(r, t, { ...urls, init: () => 'a"b' }, base), /cannot quote/);
    const nokey = new LiveTimeline({ timescale: V });
    nokey.append(fragments([{ duration: 5632, key: false }]));
    assert.equal(parseLive(writeLivePlaylist(r, nokey, urls, base)).tags.has('#EXT-X-INDEPENDENT-SEGMENTS'), false);
  });
});

describe('writeLivePlaylist properties', () => {
  it('holds the LL-HLS rules over random timelines', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rand = rng(seed);
      const n = 1 + Math.floor(rand() * 400);
      const specs = Array.from({ length: n }, (_, i) => ({
        duration: 1 + Math.floor(rand() * 8000),
        key: i === 0 || rand() < 0.15,
      }));
      const f = fragments(specs, Math.floor(rand() * 1e7));
      const t = new LiveTimeline({ timescale: V });
      t.append(f);
      if (rand() < 0.3) t.end();
      const opts = {
        ...base,
        dvrSeconds: rand() < 0.3 ? 0 : rand() * 60,
        targetDuration: rand() < 0.5 ? undefined : 1 + rand() * 3,
        skip: rand() < 0.5,
      };
      const text = writeLivePlaylist(r, t, urls, opts);
      const p = parseLive(text);
      const td = Number(p.tags.get('#EXT-X-TARGETDURATION'));
      const pt = Number(p.tags.get('#EXT-X-PART-INF')!.split('=')[1]);
      const control = Object.fromEntries(
        p.tags
          .get('#EXT-X-SERVER-CONTROL')!
          .split(',')
          .map((a) => a.split('=')),
      );
      assert.ok(Number(control['PART-HOLD-BACK']) >= 3 * pt - 1e-9, `seed ${seed}`);
      assert.ok(Number(control['CAN-SKIP-UNTIL']) >= 6 * td, `seed ${seed}`);
      assert.equal(control['CAN-BLOCK-RELOAD'] === 'YES', !t.ended);
      assert.equal(p.tags.has('#EXT-X-PRELOAD-HINT'), !t.ended);
      assert.equal(p.tags.has('#EXT-X-ENDLIST'), t.ended);

      const window = t.window(opts.dvrSeconds, 3 * td);
      assert.equal(Number(p.tags.get('#EXT-X-MEDIA-SEQUENCE')), window[0]!.msn);
      assert.equal(p.skipped + p.segments.length, window.length, `seed ${seed}: every segment listed or skipped`);
      const edge = t.edge / V;
      let extinfSum = 0;
      p.segments.forEach((s, i) => {
        const w = window[p.skipped + i]!;
        assert.equal(s.msn, w.msn, `seed ${seed}: msn`);
        if (w.complete) {
          assert.ok(Math.round(s.duration!) <= td, `seed ${seed}: EXTINF ${s.duration} over ${td}`);
          extinfSum += s.duration!;
          const media = (w.start + w.duration - window[p.skipped]!.start) / V;
          assert.ok(Math.abs(extinfSum - media) <= 1e-6 + 1e-9, `seed ${seed}: EXTINF sum ${extinfSum} vs ${media}`);
        } else {
          assert.equal(s.duration, undefined);
        }
        const recent = !w.complete || (w.start + w.duration) / V > edge - 3 * td + 1e-9;
        assert.equal(s.parts.length, recent ? w.parts.length : 0, `seed ${seed}: parts of msn ${w.msn}`);
        s.parts.forEach((q, j) => {
          assert.ok(q.duration <= pt, `seed ${seed}: part ${q.duration} over PART-TARGET ${pt}`);
          assert.equal(q.independent, w.parts[j]!.independent, `seed ${seed}: INDEPENDENT exactly on keyframe parts`);
          assert.equal(q.uri, `p${w.msn}.${j}.m4s`);
        });
      });
      if (opts.dvrSeconds > 0) {
        // DVR window + one segment, or §6.2.2's three target durations of EXTINF + the open segment.
        const span = edge - window[0]!.start / V;
        const open = t.segments.at(-1)!.complete ? 0 : t.segments.at(-1)!.duration / V;
        const bound = Math.max(opts.dvrSeconds, 3 * td + open) + window[0]!.duration / V;
        assert.ok(span < bound + 1e-9, `seed ${seed}: ${span} s listed, at most ${bound}`);
      }
    }
  });
});

describe('blocking playlist reload (§6.2.5.2)', () => {
  it('reads _HLS_msn, _HLS_part and _HLS_skip', () => {
    const q = (s: string) => parseBlockingRequest(new URLSearchParams(s));
    assert.deepEqual(q(''), {});
    assert.deepEqual(q('_HLS_msn=12'), { msn: 12 });
    assert.deepEqual(q('token=abc&_HLS_part=0&_HLS_msn=007'), { msn: 7, part: 0 });
    assert.deepEqual(q('_HLS_skip=YES'), { skip: 'YES' });
    assert.deepEqual(q('_HLS_msn=3&_HLS_skip=v2'), { msn: 3, skip: 'v2' });
    assert.deepEqual(parseBlockingRequest({ _HLS_msn: '4', _HLS_part: ['2'] }), { msn: 4, part: 2 });
    for (const bad of [
      '_HLS_part=1',
      '_HLS_msn=',
      '_HLS_msn=-1',
      '_HLS_msn=%2B1',
      '_HLS_msn=1.0',
      '_HLS_msn=1e3',
      '_HLS_msn=0x10',
      '_HLS_msn=1&_HLS_msn=2',
      '_HLS_msn=99999999999999999',
      '_HLS_msn=1&_HLS_part=a',
      '_HLS_skip=yes',
      '_HLS_skip=',
      '_HLS_skip=v3',
    ]) {
      assert.throws(
        () => q(bad),
        (e: unknown) => e instanceof SmoothcastError && e.code === 'BAD_REQUEST' && e.status === 400,
        bad,
      );
    }
    assert.throws(() => parseBlockingRequest({ _HLS_msn: ['1', '2'] }), SmoothcastError);
  });

  it('fuzz: any query is read consistently or refused with BAD_REQUEST, never anything else', () => {
    const rand = rng(42);
    const keys = ['_HLS_msn', '_HLS_part', '_HLS_skip', '_hls_msn', 'x', '_HLS_msn%00', ''];
    const alphabet = ['0', '1', '9', '-', '+', '.', 'e', 'YES', 'v2', 'NO', ' ', '%20', '%', '&', '=', '\u00e9', '\0'];
    const pick = <X>(xs: readonly X[]) => xs[Math.floor(rand() * xs.length)]!;
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const pairs = Array.from({ length: Math.floor(rand() * 4) }, () => {
        const v = Array.from({ length: Math.floor(rand() * 6) }, () => pick(alphabet)).join('');
        return `${pick(keys)}=${v}`;
      });
      const query = new URLSearchParams(pairs.join('&'));
      let out: ReturnType<typeof parseBlockingRequest>;
      try {
        out = parseBlockingRequest(query);
      } catch (e) {
        assert.ok(e instanceof SmoothcastError && e.code === 'BAD_REQUEST', `${query}: ${e}`);
        continue;
      }
      accepted++;
      const msn = query.get('_HLS_msn');
      const part = query.get('_HLS_part');
      assert.equal(out.msn, msn === null ? undefined : Number(msn), `${query}`);
      assert.equal(out.part, part === null ? undefined : Number(part), `${query}`);
      assert.ok(out.part === undefined || out.msn !== undefined);
      for (const v of [out.msn, out.part]) assert.ok(v === undefined || (Number.isSafeInteger(v) && v >= 0));
      assert.ok(out.skip === undefined || out.skip === 'YES' || out.skip === 'v2');
      assert.equal(out.skip, query.get('_HLS_skip') ?? undefined);
    }
    assert.ok(accepted > 1000, `${accepted} accepted`);
  });

  it('decides now, wait or bad request from the timeline', () => {
    const t = timeline(33); // msn 0–4 complete; msn 5 has parts 0–2
    const d = (msn?: number, part?: number) => blockingDecision({ msn, part }, t);
    assert.equal(d(), 'now');
    assert.equal(d(undefined, 1), 'bad-request');
    assert.equal(d(4), 'now');
    assert.equal(d(5), 'wait', 'segment 5 is not complete');
    assert.equal(d(6), 'wait');
    assert.equal(d(7), 'bad-request', 'more than two segments beyond the last one');
    assert.equal(d(5, 2), 'now');
    assert.equal(d(5, 3), 'wait');
    assert.equal(d(1, 9), 'now', 'long gone: the playlist has later parts');
    assert.equal(d(5, 10), 'wait');
    assert.equal(d(5, 11), 'bad-request', 'beyond the Advance Part Limit (3 / 0.3667 s ≈ 8.2 parts)');
    assert.equal(d(6, 0), 'wait');
    assert.equal(d(6, 8), 'bad-request');
    assert.equal(d(-1), 'bad-request');
    t.append(ladderVideo(7).slice(33, 37)); // segment 5 complete, segment 6 has part 0
    assert.equal(d(5), 'now');
    assert.equal(d(5, 6), 'now', 'part 6 of msn 5 never exists: part 0 of msn 6 is "or later"');
    assert.equal(d(8), 'bad-request');
    t.end();
    assert.equal(d(6, 5), 'now', 'an ended playlist never blocks');
    assert.equal(blockingDecision({ msn: 1 }, new LiveTimeline({ timescale: V })), 'wait');
    assert.equal(blockingDecision({ msn: 2 }, new LiveTimeline({ timescale: V })), 'bad-request');
  });
});

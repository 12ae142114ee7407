// A second reader we did not write, and one that does understand the LL tags: hls.js's own playlist parser (pure
// JavaScript, runs in Node). What it makes of our playlists is what hls.js in lowLatencyMode will act on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { M3U8Parser } from 'hls.js';
import { type LivePlaylistOptions, renditionReport, writeLivePlaylist } from '../manifest/llhls.ts';
import { LiveTimeline } from './parts.ts';
import { ladderAudio, ladderVideo } from './testing.ts';

const V = 15360;
const urls = {
  init: () => 'init.mp4',
  segment: (m: number) => `s${m}.m4s`,
  part: (m: number, i: number) => `p${m}.${i}.m4s`,
};
const r = { id: 'v0', track: { timescale: V, initSize: 800 } };
const opts: LivePlaylistOptions = { dvrSeconds: 0, ingestStartWallClockMs: Date.UTC(2025, 0, 2), targetDuration: 2 };

interface HlsPart {
  index: number;
  duration: number;
  independent: boolean;
  url: string;
  fragment: { sn: number };
  byteRange: number[];
}
interface HlsFragment {
  sn: number;
  duration: number;
  start: number;
  url: string;
  cc: number;
  programDateTime: number | null;
  byteRange: number[];
}
interface HlsDetails {
  playlistParsingError: Error | null;
  live: boolean;
  canBlockReload: boolean;
  canSkipUntil: number;
  skippedSegments: number;
  partHoldBack: number;
  partTarget: number;
  targetduration: number;
  startSN: number;
  endSN: number;
  totalduration: number;
  fragments: (HlsFragment | null)[];
  partList: HlsPart[] | null;
  fragmentHint?: { sn: number };
  preloadHint?: Record<string, string>;
  renditionReports?: Record<string, string>[];
}

function parse(text: string): HlsDetails {
  const url = 'http://origin.test/live/v0/index.m3u8';
  const d = M3U8Parser.parseLevelPlaylist(text, url, 0, 'main' as never, 0, null) as unknown as HlsDetails;
  assert.equal(d.playlistParsingError, null);
  return d;
}

describe("hls.js's parser on our LL-HLS playlists", () => {
  it('sees blocking reload, part target, hold-back, parts in their segments, the hint and the reports', () => {
    const t = new LiveTimeline({ timescale: V });
    t.append(ladderVideo(8).slice(0, 7 * 6 + 2));
    const audio = new LiveTimeline({ timescale: 48000, boundaries: t });
    audio.append(ladderAudio(40));
    const report = renditionReport('../a0/index.m3u8', audio)!;
    const d = parse(writeLivePlaylist(r, t, urls, { ...opts, renditionReports: [report] }));
    assert.equal(d.live, true);
    assert.equal(d.canBlockReload, true);
    assert.equal(d.partTarget, 0.36667);
    assert.equal(d.partHoldBack, 1.10001);
    assert.equal(d.canSkipUntil, 12);
    assert.equal(d.targetduration, 2);
    assert.deepEqual([d.startSN, d.endSN], [0, 6]);
    assert.ok(Math.abs(d.totalduration - t.edge / V) < 1e-5);
    assert.deepEqual(
      d.fragments.map((f) => [f!.sn, f!.duration, f!.url.split('/').at(-1)]),
      [0, 1, 2, 3, 4, 5, 6].map((n) => [n, 2, `s${n}.m4s`]),
    );
    // Parts of the segments within three target durations of the edge (14.73 s): msn 4, 5, 6 and the open 7.
    const parts = d.partList!;
    assert.deepEqual([...new Set(parts.map((p) => p.fragment.sn))], [4, 5, 6, 7]);
    for (const p of parts) {
      assert.equal(p.independent, p.index === 0);
      assert.ok(p.duration <= d.partTarget);
      assert.equal(p.url.split('/').at(-1), `p${p.fragment.sn}.${p.index}.m4s`);
    }
    assert.equal(d.fragmentHint?.sn, 7, 'the open segment is the fragment hint');
    assert.equal(d.preloadHint?.URI, 'p7.2.m4s');
    assert.deepEqual(
      d.renditionReports?.map((x) => ({ ...x })),
      [{ URI: '../a0/index.m3u8', 'LAST-MSN': String(report.lastMsn), 'LAST-PART': String(report.lastPart) }],
    );
  });

  it('merges a delta update: skipped segments counted, the rest as in the full playlist', () => {
    const t = new LiveTimeline({ timescale: V });
    t.append(ladderVideo(30).slice(0, 25 * 6 + 1));
    const full = parse(writeLivePlaylist(r, t, urls, opts));
    const delta = parse(writeLivePlaylist(r, t, urls, { ...opts, skip: true }));
    assert.equal(delta.skippedSegments, 19);
    assert.deepEqual([delta.startSN, delta.endSN], [full.startSN, full.endSN]);
    assert.deepEqual(
      delta.fragments.slice(19).map((f) => [f!.sn, f!.duration]),
      full.fragments.slice(19).map((f) => [f!.sn, f!.duration]),
    );
  });

  it('reads byte ranges, discontinuities and the end of the stream', () => {
    const t = new LiveTimeline({ timescale: V });
    const later = ladderVideo(3, 60 * V).map((f) => ({ ...f, offset: f.offset + 18_000 }));
    t.append([...ladderVideo(3), ...later]);
    t.end();
    const d = parse(writeLivePlaylist(r, t, urls, { ...opts, byteRange: { uri: 'v0.mp4' } }));
    assert.equal(d.live, false);
    assert.deepEqual(
      d.fragments.map((f) => [f!.sn, f!.cc, f!.byteRange]),
      t.segments.map((s) => [s.msn, s.discontinuitySequence, [s.offset, s.offset + s.size]]),
    );
    assert.equal(d.fragments[3]!.programDateTime, Date.UTC(2025, 0, 2) + 60_000, 'dated again after the gap');
    const last = d.partList!.at(-1)!;
    const part = t.segments.at(-1)!.parts.at(-1)!;
    assert.deepEqual(last.byteRange, [part.offset, part.offset + part.size]);
  });
});

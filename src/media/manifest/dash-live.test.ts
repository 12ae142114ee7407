import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmoothcastError } from '../../core/errors.ts';
import { type LiveSegment, LiveTimeline } from '../live/parts.ts';
import { ladderAudio, ladderVideo, rng } from '../live/testing.ts';
import type { Segment } from '../types.ts';
import {
  type LiveManifestRendition,
  type LiveMpdOptions,
  type LiveSegmentsView,
  latencyTargets,
  writeLiveMpd,
} from './dash-live.ts';
import {
  AUDIO_TS,
  dashJsReadMpd,
  elements,
  expandTimeline,
  growRandomEvent,
  parseXml,
  VIDEO_TS,
  type XmlElement,
} from './live-testing.ts';
import { testTrack } from './testing.ts';

const V = VIDEO_TS;
const refuses = (code: string) => (e: unknown) => e instanceof SmoothcastError && e.code === code;
const AST = Date.UTC(2025, 0, 2, 12);
const urls = { dashInitTemplate: '$RepresentationID$/init.mp4', dashMediaTemplate: '$RepresentationID$/$Number$.m4s' };
const base: LiveMpdOptions = { dvrSeconds: 6, ingestStartWallClockMs: AST, nowMs: AST + 40_000, utcTimingUrl: '/time' };

function video(id: string, h: number, peak: number): LiveManifestRendition {
  const w = Math.round((h * 16) / 9);
  return {
    id,
    track: testTrack('video', V, { width: w, height: h }),
    peakBitrate: peak,
    averageBitrate: peak,
    frameRate: 30,
    width: w,
    height: h,
  };
}
const v0 = video('v0', 360, 1_000_000);
const v1 = video('v1', 720, 3_000_000);
const a0: LiveManifestRendition = {
  id: 'a0',
  track: testTrack('audio', AUDIO_TS),
  peakBitrate: 128_000,
  averageBitrate: 128_000,
  language: 'en',
  label: 'English',
};

/** A video timeline of `segments` ladder GOPs, the last one open (two of its six parts in). */
function ladder(segments: number, extra: Segment[] = []): LiveTimeline {
  const t = new LiveTimeline({ timescale: V });
  t.append([...ladderVideo(segments + 1).slice(0, segments * 6 + 2), ...extra]);
  return t;
}

/** [msn, t, d] of every segment a Representation's template lists, with startNumber applied. */
function listedOf(mpd: XmlElement, id: string): [number, number, number][] {
  for (const set of elements(mpd, 'AdaptationSet')) {
    const setTpl = set.children.find((c) => c.name === 'SegmentTemplate');
    for (const rep of set.children.filter((c) => c.name === 'Representation' && c.attrs.id === id)) {
      const tpl = rep.children.find((c) => c.name === 'SegmentTemplate') ?? setTpl!;
      const first = Number(tpl.attrs.startNumber);
      const timeline = tpl.children.find((c) => c.name === 'SegmentTimeline')!;
      return expandTimeline(timeline).map((s, i) => [first + i, s.t, s.d]);
    }
  }
  throw new Error(`no Representation ${id}`);
}

const expected = (segs: readonly LiveSegment[]) =>
  segs.map((s): [number, number, number] => [s.msn, s.start, s.duration]);

describe('writeLiveMpd', () => {
  it('writes a dynamic MPD: anchors, DVR depth, service description, UTCTiming, the window by $Number$', () => {
    const tv = ladder(20);
    const ta = new LiveTimeline({ timescale: AUDIO_TS, boundaries: tv });
    ta.append(ladderAudio(117));
    const timelines = new Map<string, LiveSegmentsView>([
      ['v0', tv],
      ['v1', tv],
      ['a0', ta],
    ]);
    const mpd = writeLiveMpd([v1, a0, v0], timelines, urls, { ...base, latency: latencyTargets('low', 2) });
    assert.equal(
      mpd,
      `<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic" availabilityStartTime="2025-01-02T12:00:00.000Z" publishTime="2025-01-02T12:00:40.000Z" minimumUpdatePeriod="PT2.048S" timeShiftBufferDepth="PT6S" suggestedPresentationDelay="PT5S" maxSegmentDuration="PT2.048S" minBufferTime="PT2.048S">
  <ServiceDescription id="0">
    <Latency target="5000" min="2500" max="9000"/>
    <PlaybackRate min="0.95" max="1.05"/>
  </ServiceDescription>
  <Period id="0" start="PT0S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1" maxWidth="1280" maxHeight="720" maxFrameRate="30" par="16:9">
      <SegmentTemplate timescale="15360" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number$.m4s" startNumber="17">
        <SegmentTimeline>
          <S t="522240" d="30720" r="2"/>
        </SegmentTimeline>
      </SegmentTemplate>
      <Representation id="v0" bandwidth="1000000" codecs="avc1.64001F" width="640" height="360" frameRate="30" sar="1:1"/>
      <Representation id="v1" bandwidth="3000000" codecs="avc1.64001F" width="1280" height="720" frameRate="30" sar="1:1"/>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" lang="en" segmentAlignment="true" startWithSAP="1">
      <Label>English</Label>
      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>
      <SegmentTemplate timescale="48000" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number$.m4s" startNumber="16">
        <SegmentTimeline>
          <S t="1540096" d="98304"/>
          <S d="81920"/>
          <S d="98304"/>
        </SegmentTimeline>
      </SegmentTemplate>
      <Representation id="a0" bandwidth="128000" codecs="mp4a.40.2" audioSamplingRate="48000">
        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"/>
      </Representation>
    </AdaptationSet>
  </Period>
  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="/time"/>
</MPD>
`,
    );
    parseXml(mpd);
  });

  it('lists the complete segments of the window; startNumber is the first msn; expired ones go', () => {
    const t = ladder(20); // complete: msn 0 to 19; the edge is at 40.73 s
    const one = new Map([['v0', t]]);
    const at = (dvrSeconds: number, nowS: number) =>
      listedOf(parseXml(writeLiveMpd([v0], one, urls, { ...base, dvrSeconds, nowMs: AST + nowS * 1000 })), 'v0');
    // Segments ending within 6 s of the edge: 17 (34–36 s) to 19; the open segment 20 is not listed.
    assert.deepEqual(at(6, 41), expected(t.segments.slice(17, 20)));
    // At 42.5 s segment 17 has been out of a 6 s time-shift buffer for half a second (§5.3.9.5.3).
    assert.deepEqual(at(6, 42.5), expected(t.segments.slice(18, 20)));
    assert.deepEqual(at(0, 45.2), expected(t.segments.slice(0, 20)));
    const mpd = parseXml(writeLiveMpd([v0], one, urls, { ...base, dvrSeconds: 0, nowMs: AST + 45_200 }));
    assert.equal(mpd.attrs.timeShiftBufferDepth, 'PT46S', 'the whole event: its age, rounded up');
  });

  it('gives an explicit S@t after a gap and after a discontinuity whose tfdt runs on', () => {
    const t = new LiveTimeline({ timescale: V });
    t.append(ladderVideo(3));
    t.append(ladderVideo(3, 60 * V).map((f) => ({ ...f, offset: f.offset + 18_000 })));
    t.markDiscontinuity();
    t.append(ladderVideo(2, 60 * V + 3 * 30720).map((f) => ({ ...f, offset: f.offset + 36_000 })));
    const mpd = parseXml(writeLiveMpd([v0], new Map([['v0', t]]), urls, { ...base, dvrSeconds: 0, nowMs: AST + 70e3 }));
    assert.deepEqual(
      elements(mpd, 'S').map((s) => s.attrs),
      [
        { t: '0', d: '30720', r: '2' },
        { t: String(60 * V), d: '30720', r: '2' },
        { t: String(60 * V + 3 * 30720), d: '30720' },
      ],
    );
  });

  it('turns static once the event has ended: the whole event, the same numbers, no live attributes', () => {
    const t = ladder(5);
    t.end();
    const text = writeLiveMpd([v0], new Map([['v0', t]]), urls, { ...base, dvrSeconds: 2, ended: true });
    const mpd = parseXml(text);
    assert.equal(mpd.attrs.type, 'static');
    assert.equal(mpd.attrs.mediaPresentationDuration, 'PT10.734S');
    for (const gone of ['minimumUpdatePeriod', 'timeShiftBufferDepth', 'suggestedPresentationDelay']) {
      assert.equal(mpd.attrs[gone], undefined, gone);
    }
    assert.deepEqual(elements(mpd, 'UTCTiming'), []);
    assert.deepEqual(elements(mpd, 'ServiceDescription'), []);
    assert.deepEqual(listedOf(mpd, 'v0'), expected(t.segments));
  });

  it('gives each Representation its own template when their windows differ', () => {
    const ahead = ladder(8);
    const behind = ladder(7);
    const mpd = parseXml(
      writeLiveMpd(
        [v0, v1],
        new Map([
          ['v0', ahead],
          ['v1', behind],
        ]),
        urls,
        { ...base, nowMs: AST + 20e3 },
      ),
    );
    assert.equal(elements(mpd, 'SegmentTemplate').length, 2);
    assert.deepEqual(listedOf(mpd, 'v0').at(-1)?.[0], 7);
    assert.deepEqual(listedOf(mpd, 'v1').at(-1)?.[0], 6);
  });

  it('writes availabilityTimeOffset only when asked', () => {
    const one = new Map([['v0', ladder(4)]]);
    const tpl = (o: Partial<LiveMpdOptions>) =>
      elements(parseXml(writeLiveMpd([v0], one, urls, { ...base, nowMs: AST + 10e3, ...o })), 'SegmentTemplate')[0]!;
    assert.equal(tpl({}).attrs.availabilityTimeOffset, undefined);
    const a = tpl({ availabilityTimeOffset: 1.5 }).attrs;
    assert.deepEqual([a.availabilityTimeOffset, a.availabilityTimeComplete], ['1.5', 'false']);
  });

  it('refuses what it cannot write', () => {
    const one = new Map([['v0', ladder(3)]]);
    const fresh = new LiveTimeline({ timescale: V });
    fresh.append(ladderVideo(1).slice(0, 3));
    assert.throws(() => writeLiveMpd([v0], new Map([['v0', fresh]]), urls, base), refuses('ASSET_NOT_PLAYABLE'));
    assert.throws(() => writeLiveMpd([v0], new Map(), urls, base), refuses('INTERNAL'));
    assert.throws(() => writeLiveMpd([v0], one, { ...urls, dashMediaTemplate: 'x.m4s' }, base), refuses('INTERNAL'));
    assert.throws(() => writeLiveMpd([v0], one, urls, { ...base, utcTimingUrl: '' }), refuses('INTERNAL'));
    assert.throws(() => writeLiveMpd([v0], one, urls, { ...base, nowMs: Number.NaN }), refuses('INTERNAL'));
    assert.throws(() => writeLiveMpd([v0], one, urls, { ...base, nowMs: AST + 600e3 }), refuses('ASSET_NOT_PLAYABLE'));
  });

  it('derives latency targets from the segment and update durations', () => {
    assert.deepEqual(latencyTargets('low', 2, 1), {
      target: 4,
      min: 2.5,
      max: 8,
      playbackRate: { min: 0.95, max: 1.05 },
    });
    assert.deepEqual(latencyTargets('standard', 2), { target: 8, min: 4, max: 14 });
  });
});

describe('writeLiveMpd over random timelines', () => {
  it('lists exactly the complete, available segments of the window, S@t on every discontinuity', () => {
    const seen = { written: 0, refused: 0, discontinuities: 0, wholeEvent: 0 };
    for (let seed = 1; seed <= 25; seed++) {
      const rand = rng(seed);
      let lastPublish = 0;
      let lastNow = 0;
      growRandomEvent(rand, 40, ({ video, audio, ingestStartMs }) => {
        const edgeMs = Math.max((video.edge / V) * 1000, (audio.edge / AUDIO_TS) * 1000);
        const dvrSeconds = rand() < 0.3 ? 0 : 1 + Math.floor(rand() * 20);
        const nowMs = Math.max(lastNow + 1, ingestStartMs + Math.ceil(edgeMs) + Math.floor(rand() * 3000));
        lastNow = nowMs;
        const opts = { ...base, dvrSeconds, ingestStartWallClockMs: ingestStartMs, nowMs };
        const timelines = new Map<string, LiveSegmentsView>([
          ['v0', video],
          ['a0', audio],
        ]);
        const want = (t: LiveTimeline) =>
          t
            .window(dvrSeconds)
            .filter((s) => s.complete)
            .filter(
              (s) =>
                dvrSeconds === 0 ||
                ingestStartMs + ((s.start + s.duration) / t.timescale) * 1000 + dvrSeconds * 1000 >= nowMs - 1,
            );
        if (want(video).length === 0 || want(audio).length === 0) {
          assert.throws(() => writeLiveMpd([v0, a0], timelines, urls, opts), /complete segment|available/);
          seen.refused++;
          return;
        }
        const text = writeLiveMpd([v0, a0], timelines, urls, opts);
        const mpd = parseXml(text);
        const ctx = `seed ${seed}, dvr ${dvrSeconds}`;
        for (const [r, t] of [
          [v0, video],
          [a0, audio],
        ] as const) {
          const segs = want(t);
          assert.deepEqual(listedOf(mpd, r.id), expected(segs), ctx);
          const sum = (xs: readonly { duration: number }[]) => xs.reduce((n, s) => n + s.duration, 0);
          const timeline = elements(mpd, 'SegmentTimeline')[r === v0 ? 0 : 1]!;
          const listed = expandTimeline(timeline);
          assert.equal(
            listed.reduce((n, s) => n + s.d, 0),
            sum(segs),
            ctx,
          );
          segs.forEach((s, i) => {
            if (s.discontinuity || i === 0) assert.ok(listed[i]!.explicit, `${ctx}: msn ${s.msn} needs S@t`);
            if (s.discontinuity && i > 0) seen.discontinuities++;
          });
        }
        const publish = Date.parse(mpd.attrs.publishTime!);
        assert.ok(publish >= lastPublish, 'publishTime never goes back');
        lastPublish = publish;
        const depth = Number(/^PT([\d.]+)S$/.exec(mpd.attrs.timeShiftBufferDepth!)![1]);
        if (dvrSeconds > 0) assert.equal(depth, dvrSeconds);
        else assert.ok(depth * 1000 >= nowMs - ingestStartMs && Number.isInteger(depth));
        seen.written++;
        if (dvrSeconds === 0) seen.wholeEvent++;
      });
    }
    // The runs did reach the cases that matter.
    assert.ok(
      seen.written > 600 && seen.refused > 0 && seen.discontinuities > 100 && seen.wholeEvent > 100,
      JSON.stringify(seen),
    );
  });
});

describe("dash.js's own MPD reader on the live MPD", () => {
  const timelines = () => {
    const tv = new LiveTimeline({ timescale: V });
    tv.append(ladderVideo(10));
    tv.append(ladderVideo(8, 40 * V).map((f) => ({ ...f, offset: f.offset + 60_000 })));
    const ta = new LiveTimeline({ timescale: AUDIO_TS, boundaries: tv });
    ta.append(ladderAudio(59));
    ta.append(ladderAudio(47, 40 * AUDIO_TS).map((f) => ({ ...f, offset: f.offset + 59_000 })));
    return { tv, ta };
  };
  const now = AST + 56_500;

  it('reads a dynamic MPD: depth, anchors, latency, clock, every listed segment by number and time', () => {
    const { tv, ta } = timelines();
    const map = new Map<string, LiveSegmentsView>([
      ['v0', tv],
      ['v1', tv],
      ['a0', ta],
    ]);
    const opts = { ...base, dvrSeconds: 20, nowMs: now, latency: latencyTargets('low', 2) };
    const d = dashJsReadMpd(writeLiveMpd([v0, v1, a0], map, urls, opts), now);
    assert.equal(d.dynamic, true);
    assert.equal(d.timeShiftBufferDepth, 20);
    assert.equal(d.availabilityStartTime.getTime(), AST);
    assert.equal(d.publishTime?.getTime(), now);
    assert.equal(d.serviceDescriptions[0].latency.target, 5000);
    assert.deepEqual(d.serviceDescriptions[0].playbackRate, { min: 0.95, max: 1.05 });
    assert.deepEqual(
      d.utcTimings.map((u) => [u.schemeIdUri, u.value]),
      [['urn:mpeg:dash:utc:http-iso:2014', '/time']],
    );
    for (const [id, t] of [
      ['v0', tv],
      ['v1', tv],
      ['a0', ta],
    ] as const) {
      const rep = d.representations.find((r) => r.id === id)!;
      const segs = t.window(20).filter((s) => s.complete);
      assert.ok(
        segs.some((s) => s.discontinuity),
        'the window spans the gap',
      );
      assert.deepEqual(
        rep.segments.map((s) => [s.media, s.start, s.duration]),
        segs.map((s) => [`${id}/${s.msn}.m4s`, s.start / t.timescale, s.duration / t.timescale]),
      );
      for (const s of rep.segments) assert.ok(s.availableAt <= now);
    }
  });

  it('reads the static MPD of the ended event from msn 0', () => {
    const { tv, ta } = timelines();
    tv.end();
    ta.end();
    const map = new Map<string, LiveSegmentsView>([
      ['v0', tv],
      ['a0', ta],
    ]);
    const d = dashJsReadMpd(writeLiveMpd([v0, a0], map, urls, { ...base, ended: true, nowMs: now }), now);
    assert.equal(d.dynamic, false);
    assert.equal(d.manifest.mediaPresentationDuration, Math.ceil((ta.edge / AUDIO_TS) * 1000) / 1000);
    const rep = d.representations.find((r) => r.id === 'v0')!;
    assert.deepEqual(
      rep.segments.map((s) => s.media),
      tv.segments.map((s) => `v0/${s.msn}.m4s`),
    );
  });

  it('agrees with the writer over a random event', () => {
    const rand = rng(7);
    let compared = 0;
    growRandomEvent(rand, 30, ({ video, audio, ingestStartMs }) => {
      const map = new Map<string, LiveSegmentsView>([
        ['v0', video],
        ['a0', audio],
      ]);
      const nowMs = ingestStartMs + Math.ceil(Math.max(video.edge / V, audio.edge / AUDIO_TS) * 1000);
      const opts = { ...base, dvrSeconds: 10, ingestStartWallClockMs: ingestStartMs, nowMs };
      let text: string;
      try {
        text = writeLiveMpd([v0, a0], map, urls, opts);
      } catch {
        return; // nothing complete yet: covered above
      }
      const mpd = parseXml(text);
      const d = dashJsReadMpd(text, nowMs);
      for (const id of ['v0', 'a0']) {
        const ts = id === 'v0' ? V : AUDIO_TS;
        assert.deepEqual(
          d.representations.find((r) => r.id === id)!.segments.map((s) => [s.media, Math.round(s.start * ts)]),
          listedOf(mpd, id).map(([n, t]) => [`${id}/${n}.m4s`, t]),
        );
      }
      compared++;
    });
    assert.ok(compared > 20);
  });
});

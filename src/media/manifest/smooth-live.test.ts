import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmoothcastError } from '../../core/errors.ts';
import { type LiveSegment, LiveTimeline } from '../live/parts.ts';
import { ladderAudio, ladderVideo, rng } from '../live/testing.ts';
import type { LiveManifestRendition, LiveSegmentsView } from './dash-live.ts';
import {
  AUDIO_TS,
  dashJsReadSmooth,
  elements,
  growRandomEvent,
  parseXml,
  VIDEO_TS,
  type XmlElement,
} from './live-testing.ts';
import { writeLiveSmoothManifest } from './smooth-live.ts';
import { testTrack } from './testing.ts';

const V = VIDEO_TS;
const refuses = (code: string) => (e: unknown) => e instanceof SmoothcastError && e.code === code;
// avcC: version 1, High profile level 3.1, 4-byte lengths, one SPS and one PPS.
const avcC = Uint8Array.from([1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 2, 0x68, 0xee]);

function video(id: string, h: number, peak: number): LiveManifestRendition {
  const w = Math.round((h * 16) / 9);
  return {
    id,
    track: testTrack('video', V, { width: w, height: h, codecConfig: avcC }),
    peakBitrate: peak,
    averageBitrate: peak,
    width: w,
    height: h,
  };
}
const v0 = video('v0', 360, 1_000_000);
const v1 = video('v1', 720, 3_000_000);
const a0: LiveManifestRendition = {
  id: 'a0',
  track: testTrack('audio', AUDIO_TS, { codecConfig: Uint8Array.from([0x11, 0x90]) }),
  peakBitrate: 128_000,
  averageBitrate: 128_000,
  language: 'en',
};
const bitrates = new Map([
  ['v0', 1_000_000],
  ['v1', 3_000_000],
  ['a0', 128_000],
]);

function ladder(segments: number): LiveTimeline {
  const t = new LiveTimeline({ timescale: V });
  t.append(ladderVideo(segments + 1).slice(0, segments * 6 + 2));
  return t;
}

/** [t, d] of every chunk of a StreamIndex, t carried on where it is left out ([MS-SSTR] §2.2.2.6). */
function chunksOf(index: XmlElement): [number, number][] {
  let t = 0;
  return index.children
    .filter((c) => c.name === 'c')
    .map((c) => {
      if (c.attrs.t !== undefined) t = Number(c.attrs.t);
      const d = Number(c.attrs.d);
      const out: [number, number] = [t, d];
      t += d;
      return out;
    });
}

const td = (segs: readonly LiveSegment[]) => segs.map((s): [number, number] => [s.start, s.duration]);

describe('writeLiveSmoothManifest', () => {
  it('writes a live manifest: one chunk per segment of the DVR window, in each track timescale', () => {
    const tv = ladder(6);
    const ta = new LiveTimeline({ timescale: AUDIO_TS, boundaries: tv });
    ta.append(ladderAudio(37));
    const timelines = new Map<string, LiveSegmentsView>([
      ['v0', tv],
      ['v1', tv],
      ['a0', ta],
    ]);
    assert.equal(
      writeLiveSmoothManifest([v0, v1, a0], timelines, bitrates, { dvrSeconds: 4 }),
      `<?xml version="1.0" encoding="UTF-8"?>
<SmoothStreamingMedia MajorVersion="2" MinorVersion="2" TimeScale="10000000" Duration="0" IsLive="TRUE" LookaheadCount="0" LookAheadFragmentCount="0" DVRWindowLength="40000000">
  <StreamIndex Type="video" Name="video" Chunks="2" QualityLevels="2" Url="QualityLevels({bitrate})/Fragments(video={start time})" TimeScale="15360" MaxWidth="1280" MaxHeight="720" DisplayWidth="1280" DisplayHeight="720">
    <QualityLevel Index="0" Bitrate="1000000" FourCC="AVC1" MaxWidth="640" MaxHeight="360" CodecPrivateData="000000016764001F0000000168EE" NALUnitLengthField="4"/>
    <QualityLevel Index="1" Bitrate="3000000" FourCC="AVC1" MaxWidth="1280" MaxHeight="720" CodecPrivateData="000000016764001F0000000168EE" NALUnitLengthField="4"/>
    <c t="122880" d="30720"/>
    <c d="30720"/>
  </StreamIndex>
  <StreamIndex Type="audio" Name="audio" Language="en" Chunks="2" QualityLevels="1" Url="QualityLevels({bitrate})/Fragments(audio={start time})" TimeScale="48000">
    <QualityLevel Index="0" Bitrate="128000" FourCC="AACL" SamplingRate="48000" Channels="2" BitsPerSample="16" PacketSize="4" AudioTag="255" CodecPrivateData="1190"/>
    <c t="376832" d="98304"/>
    <c d="98304"/>
  </StreamIndex>
</SmoothStreamingMedia>
`,
    );
  });

  it('lists the whole event for a DVR window of 0, with t again after a gap', () => {
    const t = new LiveTimeline({ timescale: V });
    t.append(ladderVideo(3));
    t.append(ladderVideo(3, 60 * V).map((f) => ({ ...f, offset: f.offset + 18_000 })));
    const m = parseXml(writeLiveSmoothManifest([v0], new Map([['v0', t]]), bitrates, { dvrSeconds: 0 }));
    assert.equal(m.attrs.DVRWindowLength, '0');
    const index = elements(m, 'StreamIndex')[0]!;
    assert.deepEqual(chunksOf(index), td(t.segments.filter((s) => s.complete)));
    assert.equal(index.attrs.Chunks, '5');
    assert.deepEqual(
      index.children.filter((c) => c.name === 'c').map((c) => c.attrs.t),
      ['0', undefined, undefined, String(60 * V), undefined],
    );
  });

  it('lists for the video StreamIndex only the fragments every rung has complete', () => {
    const m = parseXml(
      writeLiveSmoothManifest(
        [v0, v1],
        new Map([
          ['v0', ladder(8)],
          ['v1', ladder(7)],
        ]),
        bitrates,
        { dvrSeconds: 0 },
      ),
    );
    const index = elements(m, 'StreamIndex')[0]!;
    assert.deepEqual(chunksOf(index), td(ladder(7).segments.slice(0, 7)));
  });

  it('is the VOD manifest of the whole event once it has ended', () => {
    const t = ladder(5);
    t.end();
    const m = parseXml(writeLiveSmoothManifest([v0], new Map([['v0', t]]), bitrates, { dvrSeconds: 4, ended: true }));
    assert.equal(m.attrs.IsLive, undefined);
    assert.equal(m.attrs.Duration, String(Math.round((t.edge / V) * 1e7)));
    assert.deepEqual(chunksOf(elements(m, 'StreamIndex')[0]!), td(t.segments));
  });

  it('refuses what it cannot write', () => {
    const one = new Map([['v0', ladder(3)]]);
    const hevc = { ...v0, track: { ...v0.track, sampleEntry: 'hvc1' } };
    assert.throws(() => writeLiveSmoothManifest([hevc], one, bitrates, { dvrSeconds: 0 }), refuses('BMFF_UNSUPPORTED'));
    assert.throws(() => writeLiveSmoothManifest([v0], one, new Map(), { dvrSeconds: 0 }), refuses('INTERNAL'));
    const ended = { dvrSeconds: 0, ended: true };
    assert.throws(() => writeLiveSmoothManifest([v0], one, new Map(), ended), refuses('INTERNAL'));
    assert.throws(() => writeLiveSmoothManifest([v0], new Map(), bitrates, { dvrSeconds: 0 }), refuses('INTERNAL'));
    const fresh = new LiveTimeline({ timescale: V });
    fresh.append(ladderVideo(1).slice(0, 2));
    const none = new Map([['v0', fresh]]);
    assert.throws(
      () => writeLiveSmoothManifest([v0], none, bitrates, { dvrSeconds: 0 }),
      refuses('ASSET_NOT_PLAYABLE'),
    );
  });

  it('lists the complete segments of the window over random timelines', () => {
    let written = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const rand = rng(seed);
      growRandomEvent(rand, 40, ({ video, audio }) => {
        const dvrSeconds = rand() < 0.3 ? 0 : 1 + Math.floor(rand() * 20);
        const want = (t: LiveTimeline) => t.window(dvrSeconds).filter((s) => s.complete);
        const timelines = new Map<string, LiveSegmentsView>([
          ['v0', video],
          ['a0', audio],
        ]);
        if (want(video).length === 0 || want(audio).length === 0) {
          assert.throws(() => writeLiveSmoothManifest([v0, a0], timelines, bitrates, { dvrSeconds }));
          return;
        }
        const m = parseXml(writeLiveSmoothManifest([v0, a0], timelines, bitrates, { dvrSeconds }));
        const [vi, ai] = elements(m, 'StreamIndex');
        assert.deepEqual(chunksOf(vi!), td(want(video)), `seed ${seed}`);
        assert.deepEqual(chunksOf(ai!), td(want(audio)), `seed ${seed}`);
        assert.equal(vi!.attrs.Chunks, String(want(video).length));
        written++;
      });
    }
    assert.ok(written > 500, String(written));
  });
});

describe("dash.js's MssParser on the live manifest", () => {
  const build = () => {
    const tv = ladder(12);
    const ta = new LiveTimeline({ timescale: AUDIO_TS, boundaries: tv });
    ta.append(ladderAudio(72));
    const timelines = new Map<string, LiveSegmentsView>([
      ['v0', tv],
      ['v1', tv],
      ['a0', ta],
    ]);
    return { tv, ta, timelines };
  };

  it('reads it as dynamic with the DVR depth, and the chunks as the segment timeline', () => {
    const { tv, ta, timelines } = build();
    const m = dashJsReadSmooth(writeLiveSmoothManifest([v0, v1, a0], timelines, bitrates, { dvrSeconds: 10 }));
    assert.equal(m.type, 'dynamic');
    assert.equal(m.timeShiftBufferDepth, 10);
    const [vs, as] = m.Period[0].AdaptationSet;
    assert.equal(vs.SegmentTemplate.media, 'QualityLevels($Bandwidth$)/Fragments(video=$Time$)');
    assert.deepEqual(
      vs.Representation.map((r: { bandwidth: number; codecs: string }) => [r.bandwidth, r.codecs]),
      [
        [1_000_000, 'avc1.64001F'],
        [3_000_000, 'avc1.64001F'],
      ],
    );
    const S = (set: { SegmentTemplate: { SegmentTimeline: { S: { t: number; d: number }[] } } }) =>
      set.SegmentTemplate.SegmentTimeline.S.map((s): [number, number] => [s.t, s.d]);
    assert.deepEqual(S(vs), td(tv.window(10).filter((s) => s.complete)));
    assert.deepEqual(S(as), td(ta.window(10).filter((s) => s.complete)));
    assert.equal(as.lang, 'en');
    assert.equal(as.Representation[0].codecs, 'mp4a.40.2');
  });

  it('takes a DVR window of 0 as unbounded, and the ended event as static', () => {
    const { tv, ta, timelines } = build();
    const live = dashJsReadSmooth(writeLiveSmoothManifest([v0, a0], timelines, bitrates, { dvrSeconds: 0 }));
    assert.equal(live.timeShiftBufferDepth, Number.POSITIVE_INFINITY);
    tv.end();
    ta.end();
    const vod = dashJsReadSmooth(
      writeLiveSmoothManifest([v0, a0], timelines, bitrates, { dvrSeconds: 0, ended: true }),
    );
    assert.equal(vod.type, 'static');
    // dash.js shortens it to the shorter of the audio and video timelines.
    assert.equal(vod.mediaPresentationDuration, Math.min(tv.edge / V, ta.edge / AUDIO_TS));
  });
});

describe('the strict XML check the tests rely on', () => {
  it('rejects what is not well-formed', () => {
    for (const bad of [
      '<a><b></a>',
      '<a x="1" x="2"/>',
      '<a x=1/>',
      '<a x="&foo;"/>',
      '<a>&</a>',
      '<a x="<"/>',
      '<a/><b/>',
      '<a x="1"y="2"/>',
      '<a>',
    ]) {
      assert.throws(() => parseXml(bad), /not well-formed/, bad);
    }
    assert.deepEqual(parseXml('<?xml version="1.0"?>\n<a x="&amp;&#10;"><b/>t</a>\n').attrs, { x: '&\n' });
  });
});

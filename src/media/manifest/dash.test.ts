import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ManifestRendition, Presentation, Segment } from '../types.ts';
import { escapeXml, frameRateFraction, runLengthTimeline, writeMpd } from './dash.ts';
import { testSegments as segments, testTrack as track, testUrls as urls } from './testing.ts';

const videoSegs = segments([60060, 60060, 60060, 30030], 1001);

function video(id: string, w: number, h: number, peak: number, segs = videoSegs): ManifestRendition {
  return {
    id,
    track: track('video', 30000, { width: w, height: h }),
    segments: segs,
    peakBitrate: peak,
    averageBitrate: peak * 0.8,
    frameRate: 30000 / 1001,
    width: w,
    height: h,
  };
}

const audio: ManifestRendition = {
  id: 'a0',
  track: track('audio', 48000),
  segments: segments([96256, 96256, 96256, 47104], 1024),
  peakBitrate: 130_000.2,
  averageBitrate: 128_000,
};

const full: Presentation = {
  complete: true,
  duration: 7.007,
  renditions: [
    video('v0', 1280, 720, 4_000_000),
    audio,
    video('v2', 640, 360, 1_200_000.4),
    video('v1', 960, 540, 2_500_000),
  ],
};

describe('writeMpd', () => {
  it('writes a static MPD with one shared SegmentTemplate per AdaptationSet', () => {
    assert.equal(
      writeMpd(full, urls),
      `<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static" mediaPresentationDuration="PT7.007S" minBufferTime="PT2.006S">
  <Period id="0" start="PT0S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1" maxWidth="1280" maxHeight="720" maxFrameRate="30000/1001" par="16:9">
      <SegmentTemplate timescale="30000" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number$.m4s" startNumber="0">
        <SegmentTimeline>
          <S t="0" d="60060" r="2"/>
          <S d="30030"/>
        </SegmentTimeline>
      </SegmentTemplate>
      <Representation id="v2" bandwidth="1200001" codecs="avc1.64001F" width="640" height="360" frameRate="30000/1001" sar="1:1"/>
      <Representation id="v1" bandwidth="2500000" codecs="avc1.64001F" width="960" height="540" frameRate="30000/1001" sar="1:1"/>
      <Representation id="v0" bandwidth="4000000" codecs="avc1.64001F" width="1280" height="720" frameRate="30000/1001" sar="1:1"/>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" lang="und" segmentAlignment="true" startWithSAP="1">
      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>
      <SegmentTemplate timescale="48000" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number$.m4s" startNumber="0">
        <SegmentTimeline>
          <S t="0" d="96256" r="2"/>
          <S d="47104"/>
        </SegmentTimeline>
      </SegmentTemplate>
      <Representation id="a0" bandwidth="130001" codecs="mp4a.40.2" audioSamplingRate="48000">
        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"/>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
`,
    );
  });

  it('puts a SegmentTemplate in each Representation when their timelines differ', () => {
    const shifted = segments([60060, 60060, 60060, 30030], 1001, 0, 2002);
    const mpd = writeMpd(
      { ...full, renditions: [video('v0', 1280, 720, 4e6), video('v1', 640, 360, 1e6, shifted)] },
      urls,
    );
    assert.equal(mpd.match(/<SegmentTemplate /g)?.length, 2);
    assert.match(
      mpd,
      /<Representation id="v1" [^>]*sar="1:1">\n {8}<SegmentTemplate timescale="30000" [^>]*>\n {10}<SegmentTimeline>\n {12}<S t="2002" d="60060" r="2"\/>\n {12}<S d="30030"\/>\n/,
    );
    assert.match(mpd, /<S t="0" d="60060" r="2"\/>/);
  });

  it('writes a video-only MPD, and leaves out par when the renditions disagree on it', () => {
    const mpd = writeMpd({ ...full, renditions: [video('v0', 1280, 720, 4e6), video('v1', 426, 240, 4e5)] }, urls);
    assert.doesNotMatch(mpd, /contentType="audio"|par=/);
    assert.match(mpd, /maxWidth="1280" maxHeight="720" maxFrameRate="30000\/1001">/);
  });

  it('never states a duration shorter than the timelines, and takes minBufferTime from the options', () => {
    const late = { ...audio, segments: segments([96256, 96256, 96256, 47104], 1024, 1000) }; // ends at 7.0181 s
    const mpd = writeMpd({ ...full, duration: 6.5, renditions: [video('v0', 1280, 720, 4e6), late] }, urls, {
      minBufferTime: 1.5,
    });
    assert.match(mpd, /mediaPresentationDuration="PT7.019S" minBufferTime="PT1.5S"/);
    assert.match(mpd, /<S t="1000" d="96256" r="2"\/>/);
    assert.match(writeMpd({ ...full, duration: 3600.25 }, urls), /mediaPresentationDuration="PT3600.25S"/);
    // 6.006 * 1000 is 6005.999999999999 in floating point: still 6.006 s.
    const short = { ...audio, segments: audio.segments.slice(0, 1) };
    assert.match(writeMpd({ ...full, duration: 6.006, renditions: [short] }, urls), /"PT6.006S"/);
  });

  it('XML-escapes attribute values', () => {
    const odd = { ...urls, dashInitTemplate: 'i.mp4?a=1&b="2"', dashMediaTemplate: "<$Number$>'.m4s" };
    const v = { ...video('v0', 1280, 720, 4e6), id: 'v&0' };
    const mpd = writeMpd({ ...full, renditions: [v] }, odd);
    assert.match(mpd, / initialization="i.mp4\?a=1&amp;b=&quot;2&quot;" media="&lt;\$Number\$&gt;&apos;.m4s"/);
    assert.match(mpd, /<Representation id="v&amp;0" /);
    assert.equal(escapeXml('a\tb\nc\rd'), 'a&#9;b&#10;c&#13;d');
  });

  it('refuses an incomplete presentation, an empty one, and a media template without $Number$/$Time$', () => {
    assert.throws(() => writeMpd({ ...full, complete: false }, urls), { code: 'ASSET_NOT_PLAYABLE' });
    assert.throws(() => writeMpd({ ...full, renditions: [] }, urls), { code: 'ASSET_NOT_PLAYABLE' });
    assert.throws(() => writeMpd(full, { ...urls, dashMediaTemplate: 'seg.m4s' }), { code: 'INTERNAL' });
    assert.doesNotThrow(() => writeMpd(full, { ...urls, dashMediaTemplate: '$RepresentationID$/$Time%05d$.m4s' }));
  });
});

describe('runLengthTimeline', () => {
  const seg = (presentationStart: number, duration: number): Segment => ({
    start: presentationStart,
    duration,
    offset: 0,
    size: 1,
    samples: 1,
    startsWithKeyframe: true,
    presentationStart,
  });

  it('merges equal consecutive durations and writes t only at the start, gaps and overlaps', () => {
    assert.deepEqual(runLengthTimeline([]), []);
    assert.deepEqual(runLengthTimeline([seg(5, 10)]), [{ t: 5, d: 10 }]);
    assert.deepEqual(runLengthTimeline([seg(0, 10), seg(10, 10), seg(20, 10), seg(30, 7), seg(37, 10), seg(47, 10)]), [
      { t: 0, d: 10, r: 2 },
      { d: 7 },
      { d: 10, r: 1 },
    ]);
    // A gap (30 → 35) and an overlap (45 → 44) each restart with an explicit t, even at an equal duration.
    assert.deepEqual(runLengthTimeline([seg(0, 10), seg(10, 10), seg(20, 10), seg(35, 10), seg(44, 10), seg(54, 10)]), [
      { t: 0, d: 10, r: 2 },
      { t: 35, d: 10 },
      { t: 44, d: 10, r: 1 },
    ]);
  });

  it('expands back to the original segments', () => {
    // Durations with one gap of 4 ticks before the seventh segment.
    const segs: Segment[] = [];
    for (const [i, d] of [3, 3, 3, 5, 5, 2, 3, 3].entries()) {
      const prev = segs.at(-1);
      segs.push(seg(prev === undefined ? 100 : prev.presentationStart + prev.duration + (i === 6 ? 4 : 0), d));
    }
    const expanded: [number, number][] = [];
    let t = 0;
    for (const e of runLengthTimeline(segs)) {
      t = e.t ?? t;
      for (let i = 0; i <= (e.r ?? 0); i++, t += e.d) expanded.push([t, e.d]);
    }
    assert.deepEqual(
      expanded,
      segs.map((s) => [s.presentationStart, s.duration]),
    );
  });
});

describe('frameRateFraction', () => {
  it('writes integers as-is, NTSC rates over 1001 and others as small fractions', () => {
    const cases: [number, string][] = [
      [30, '30'],
      [25, '25'],
      [29.97, '30000/1001'],
      [30000 / 1001, '30000/1001'],
      [23.976, '24000/1001'],
      [24000 / 1001, '24000/1001'],
      [59.94, '60000/1001'],
      [60000 / 1001, '60000/1001'],
      [14.985, '15000/1001'],
      [12.5, '25/2'],
      [1 / 3, '1/3'],
      [119.88, '120000/1001'],
    ];
    for (const [rate, text] of cases) assert.equal(frameRateFraction(rate), text, String(rate));
    assert.throws(() => frameRateFraction(0), { code: 'INTERNAL' });
    assert.throws(() => frameRateFraction(Number.NaN), { code: 'INTERNAL' });
  });
});

describe('alternate audio and text tracks', () => {
  const en: ManifestRendition = {
    ...audio,
    id: 'a0',
    language: 'en',
    label: 'English',
    roles: ['main'],
    default: true,
  };
  const fr: ManifestRendition = { ...audio, id: 'a1', language: 'fr', label: 'Français', roles: ['commentary'] };
  const textUrls = { ...urls, textFile: (t: { id: string }) => `r1/${t.id}.vtt` };
  const mpd = writeMpd(
    {
      ...full,
      renditions: [...full.renditions.filter((r) => r.track.kind === 'video'), fr, en],
      text: [
        { id: 'caaaaaaaaaaaa', language: 'pt-BR', label: 'Português', kind: 'captions', default: false, forced: false },
      ],
    },
    textUrls,
  );

  it('writes one audio AdaptationSet per language with lang, Label and Role, the default first (§5.8.5.5)', () => {
    const sets = mpd.split('<AdaptationSet').slice(1);
    const audioSets = sets.filter((s) => s.includes('contentType="audio"'));
    assert.equal(audioSets.length, 2);
    assert.match(
      audioSets[0]!,
      /lang="en"[\s\S]*<Label>English<\/Label>\s*<Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"\/>[\s\S]*id="a0"/,
    );
    assert.match(
      audioSets[1]!,
      /lang="fr"[\s\S]*<Label>Français<\/Label>\s*<Role [^>]*value="commentary"\/>[\s\S]*id="a1"/,
    );
  });

  it('writes a text AdaptationSet whose one Representation is the whole WebVTT file', () => {
    assert.match(
      mpd,
      /<AdaptationSet id="\d" contentType="text" mimeType="text\/vtt" lang="pt-BR">\n\s*<Label>Português<\/Label>\n\s*<Role schemeIdUri="urn:mpeg:dash:role:2011" value="caption"\/>\n\s*<Representation id="caaaaaaaaaaaa" bandwidth="256">\n\s*<BaseURL>r1\/caaaaaaaaaaaa.vtt<\/BaseURL>/,
    );
  });
});

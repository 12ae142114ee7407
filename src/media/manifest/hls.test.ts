import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ManifestRendition, Presentation, UrlScheme } from '../types.ts';
import {
  extinfDurations,
  targetDuration,
  writeMediaPlaylist,
  writeMultivariantPlaylist,
  writeTextPlaylist,
} from './hls.ts';
import { testSegments as segments, testTrack as track } from './testing.ts';

// Media playlists one folder down, as the origin lays them out.
const urls: UrlScheme = {
  mediaPlaylist: (r) => `${r.id}/index.m3u8`,
  hlsInit: () => 'init.mp4',
  hlsSegment: (_r, n) => `${n}.m4s`,
  dashInitTemplate: '$RepresentationID$/init.mp4',
  dashMediaTemplate: '$RepresentationID$/$Number$.m4s',
};

// 30000/1001 fps: 60 frames of 1001 ticks = 2.002 s per segment, and a last one of 1.001 s.
const videoSegs = segments([60060, 60060, 60060, 30030], 1001);
// AAC at 48 kHz: 94 frames of 1024 samples = 96256 ticks ≈ 2.005333 s, and a short last one.
const audioSegs = segments([96256, 96256, 96256, 47104], 1024);

function video(id: string, w: number, h: number, peak: number, avg: number): ManifestRendition {
  return {
    id,
    track: track('video', 30000, { width: w, height: h }),
    segments: videoSegs,
    peakBitrate: peak,
    averageBitrate: avg,
    frameRate: 30000 / 1001,
    width: w,
    height: h,
  };
}

const audio: ManifestRendition = {
  id: 'a0',
  track: track('audio', 48000),
  segments: audioSegs,
  peakBitrate: 130_000.2,
  averageBitrate: 128_000,
};

const full: Presentation = {
  complete: true,
  duration: 7.007,
  // Deliberately out of order: the writer lists the highest variant first.
  renditions: [
    video('v1', 960, 540, 2_500_000.5, 2_000_000),
    video('v0', 1280, 720, 4_000_000, 3_000_000.25),
    audio,
    video('v2', 640, 360, 1_200_000, 900_000),
  ],
};

describe('writeMultivariantPlaylist', () => {
  it('lists the audio group and every video variant, highest first, with audio included in the bit rates', () => {
    assert.equal(
      writeMultivariantPlaylist(full, urls),
      [
        '#EXTM3U',
        '#EXT-X-VERSION:7',
        '#EXT-X-INDEPENDENT-SEGMENTS',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="a0/index.m3u8"',
        '#EXT-X-STREAM-INF:BANDWIDTH=4130001,AVERAGE-BANDWIDTH=3128001,CODECS="avc1.64001F,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO="audio"',
        'v0/index.m3u8',
        '#EXT-X-STREAM-INF:BANDWIDTH=2630001,AVERAGE-BANDWIDTH=2128000,CODECS="avc1.64001F,mp4a.40.2",RESOLUTION=960x540,FRAME-RATE=29.970,AUDIO="audio"',
        'v1/index.m3u8',
        '#EXT-X-STREAM-INF:BANDWIDTH=1330001,AVERAGE-BANDWIDTH=1028000,CODECS="avc1.64001F,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=29.970,AUDIO="audio"',
        'v2/index.m3u8',
        '',
      ].join('\n'),
    );
  });

  it('has no EXT-X-MEDIA and no AUDIO attribute for a source without audio', () => {
    const text = writeMultivariantPlaylist({ ...full, renditions: full.renditions.filter((r) => r.id !== 'a0') }, urls);
    assert.doesNotMatch(text, /EXT-X-MEDIA|AUDIO=|mp4a/);
    assert.match(
      text,
      /^#EXT-X-STREAM-INF:BANDWIDTH=4000000,AVERAGE-BANDWIDTH=3000001,CODECS="avc1.64001F",RESOLUTION=1280x720,FRAME-RATE=29.970$/m,
    );
  });

  it('derives FRAME-RATE from the segments when the rendition does not state it', () => {
    const v = { ...video('v0', 1280, 720, 1, 1), frameRate: undefined };
    assert.match(writeMultivariantPlaylist({ ...full, renditions: [v] }, urls), /FRAME-RATE=29\.970\n/);
  });

  it('leaves out EXT-X-INDEPENDENT-SEGMENTS when a segment does not start with a keyframe', () => {
    const v = video('v0', 1280, 720, 1, 1);
    const odd = { ...v, segments: v.segments.map((s, i) => ({ ...s, startsWithKeyframe: i !== 2 })) };
    assert.doesNotMatch(writeMultivariantPlaylist({ ...full, renditions: [odd, audio] }, urls), /INDEPENDENT/);
    assert.doesNotMatch(writeMediaPlaylist(odd, full, urls), /INDEPENDENT/);
  });

  it('names several audio renditions apart and budgets the largest one into every variant', () => {
    const surround = {
      ...audio,
      id: 'a1',
      track: track('audio', 48000, { channels: 6, codec: 'ec-3' }),
      peakBitrate: 400_000,
    };
    const text = writeMultivariantPlaylist({ ...full, renditions: [full.renditions[1]!, audio, surround] }, urls);
    assert.match(text, /NAME="Audio 1",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="a0\/index.m3u8"\n/);
    assert.match(text, /NAME="Audio 2",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="6",URI="a1\/index.m3u8"\n/);
    assert.match(text, /BANDWIDTH=4400000,AVERAGE-BANDWIDTH=3128001,CODECS="avc1.64001F,mp4a.40.2,ec-3"/);
  });

  it('lists audio renditions as variants when there is no video', () => {
    assert.equal(
      writeMultivariantPlaylist({ ...full, renditions: [audio] }, urls),
      '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n' +
        '#EXT-X-STREAM-INF:BANDWIDTH=130001,AVERAGE-BANDWIDTH=128000,CODECS="mp4a.40.2"\na0/index.m3u8\n',
    );
  });

  it('refuses a presentation without renditions and URIs that would break a quoted-string', () => {
    assert.throws(() => writeMultivariantPlaylist({ ...full, renditions: [] }, urls), { code: 'ASSET_NOT_PLAYABLE' });
    const bad = { ...urls, mediaPlaylist: () => 'a"b.m3u8' };
    assert.throws(() => writeMultivariantPlaylist(full, bad), { code: 'INTERNAL' });
    assert.throws(() => writeMediaPlaylist(audio, full, { ...urls, hlsSegment: () => 'x\n#EXT-X-ENDLIST' }));
  });
});

describe('writeMediaPlaylist', () => {
  it('writes a complete VOD playlist with exact EXTINF values', () => {
    assert.equal(
      writeMediaPlaylist(full.renditions[1]!, full, urls),
      [
        '#EXTM3U',
        '#EXT-X-VERSION:7',
        '#EXT-X-TARGETDURATION:2',
        '#EXT-X-MEDIA-SEQUENCE:0',
        '#EXT-X-PLAYLIST-TYPE:VOD',
        '#EXT-X-INDEPENDENT-SEGMENTS',
        '#EXT-X-MAP:URI="init.mp4"',
        '#EXTINF:2.002,',
        '0.m4s',
        '#EXTINF:2.002,',
        '1.m4s',
        '#EXTINF:2.002,',
        '2.m4s',
        '#EXTINF:1.001,',
        '3.m4s',
        '#EXT-X-ENDLIST',
        '',
      ].join('\n'),
    );
  });

  it('gives audio segments microsecond EXTINFs whose sum tracks the media timeline', () => {
    const text = writeMediaPlaylist(audio, full, urls);
    // 96256 / 48000 = 2.00533333…: cumulative rounding gives 2.005333, 2.005334, 2.005333, then 47104/48000.
    assert.deepEqual(
      text.split('\n').filter((l) => l.startsWith('#EXTINF')),
      ['#EXTINF:2.005333,', '#EXTINF:2.005334,', '#EXTINF:2.005333,', '#EXTINF:0.981333,'],
    );
    assert.match(text, /^#EXT-X-TARGETDURATION:2$/m);
  });

  it('keeps the sum of EXTINFs within 0.5 µs of the real duration over many segments', () => {
    const many = segments(
      Array.from({ length: 10_000 }, () => 1001),
      1001,
    );
    const micros = extinfDurations(many, 30000).reduce((sum, d) => sum + Math.round(Number(d) * 1e6), 0);
    assert.equal(micros, Math.round((10_000 * 1001 * 1e6) / 30000));
  });

  it('writes a growing playlist as EVENT without ENDLIST, with the nominal duration as a floor', () => {
    const growing: Presentation = { ...full, complete: false };
    const v = { ...video('v0', 1280, 720, 1, 1), segments: videoSegs.slice(0, 2) };
    const text = writeMediaPlaylist(v, growing, urls, { targetDuration: 6 });
    assert.match(text, /^#EXT-X-TARGETDURATION:6$/m);
    assert.match(text, /^#EXT-X-PLAYLIST-TYPE:EVENT$/m);
    assert.match(text, /^#EXT-X-MEDIA-SEQUENCE:0$/m);
    assert.doesNotMatch(text, /ENDLIST/);
    assert.equal(text.split('\n').filter((l) => l.startsWith('#EXTINF')).length, 2);
    // An empty growing playlist is valid and already has its final target duration.
    assert.match(
      writeMediaPlaylist({ ...v, segments: [] }, growing, urls, { targetDuration: 2 }),
      /TARGETDURATION:2\n/,
    );
  });

  it('rounds EXTINF to the nearest integer for TARGETDURATION (RFC 8216 §4.3.3.1)', () => {
    assert.equal(targetDuration(segments([2500], 1), 1000), 3); // 2.5 s rounds up to 3
    assert.equal(targetDuration(segments([224_100], 1), 90_000), 2); // 2.49 s rounds to 2
    assert.equal(targetDuration(segments([2_000, 2_500, 1_000], 1), 1000), 3);
    assert.equal(targetDuration(segments([2_000], 1), 1000, 6), 6);
    assert.equal(targetDuration(segments([2_000], 1), 1000, 1.5), 2); // a fractional nominal is rounded up
    assert.equal(targetDuration([], 1000), 1);
    assert.throws(() => targetDuration([], 1000, 0), { code: 'INTERNAL' });
  });

  it('never lowers TARGETDURATION while a playlist grows, and never under-states a listed segment', () => {
    // Nominal 2 s, one 2.6 s segment (a source gap) in the middle, then the encode completes.
    const all = segments([60060, 60060, 78000, 60060, 30030], 1001);
    let previous = 0;
    for (let n = 0; n <= all.length; n++) {
      const r = { ...video('v0', 1280, 720, 1, 1), segments: all.slice(0, n) };
      for (const complete of n === all.length ? [false, true] : [false]) {
        const text = writeMediaPlaylist(r, { ...full, complete }, urls, { targetDuration: 2 });
        const target = Number(/TARGETDURATION:(\d+)/.exec(text)![1]);
        assert.ok(target >= previous, `target fell from ${previous} to ${target} at ${n} segments`);
        for (const d of text.matchAll(/#EXTINF:([\d.]+),/g)) assert.ok(Math.round(Number(d[1])) <= target);
        previous = target;
      }
    }
    assert.equal(previous, 3);
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
  const fr: ManifestRendition = { ...audio, id: 'a1', language: 'fr', label: 'French', roles: ['alternate'] };
  const es: ManifestRendition = { ...audio, id: 'a2', language: 'es', label: 'English', roles: ['commentary'] };
  const textUrls: UrlScheme = {
    ...urls,
    textPlaylist: (t) => `${t.id}.m3u8`,
    textSegment: (t, n) => `${t.id}/${n}.vtt`,
    textFile: (t) => `${t.id}.vtt`,
  };
  const subs = [
    {
      id: 'caaaaaaaaaaaa',
      language: 'en',
      label: 'English',
      kind: 'subtitles' as const,
      default: false,
      forced: false,
    },
    {
      id: 'cbbbbbbbbbbbb',
      language: 'de',
      label: 'Deutsch (SDH)',
      kind: 'captions' as const,
      default: false,
      forced: true,
    },
  ];
  const p: Presentation = {
    complete: true,
    renditions: [video('v0', 1280, 720, 4e6, 3e6), en, fr, es],
    duration: 7.007,
    text: subs,
  };

  it('lists every audio language in one group, one DEFAULT, commentary not autoselected, names unique', () => {
    const text = writeMultivariantPlaylist(p, textUrls);
    const media = text.split('\n').filter((l) => l.startsWith('#EXT-X-MEDIA:TYPE=AUDIO'));
    assert.equal(media.length, 3);
    assert.match(media[0]!, /LANGUAGE="en",NAME="English",DEFAULT=YES,AUTOSELECT=YES/);
    assert.match(media[1]!, /LANGUAGE="fr",NAME="French",DEFAULT=NO,AUTOSELECT=YES/);
    assert.match(media[2]!, /LANGUAGE="es",NAME="English \(2\)",DEFAULT=NO,AUTOSELECT=NO/);
    assert.equal(media.filter((l) => l.includes('DEFAULT=YES')).length, 1);
  });

  it('adds a SUBTITLES group referenced by every variant (RFC 8216bis §4.4.6.1)', () => {
    const text = writeMultivariantPlaylist(p, textUrls);
    const s = text.split('\n').filter((l) => l.startsWith('#EXT-X-MEDIA:TYPE=SUBTITLES'));
    assert.equal(s.length, 2);
    assert.match(
      s[0]!,
      /GROUP-ID="subs",LANGUAGE="en",NAME="English",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="caaaaaaaaaaaa.m3u8"/,
    );
    assert.match(s[1]!, /FORCED=YES,CHARACTERISTICS="public.accessibility.transcribes-spoken-dialog/);
    for (const l of text.split('\n').filter((x) => x.startsWith('#EXT-X-STREAM-INF'))) {
      assert.match(l, /AUDIO="audio",SUBTITLES="subs"$/);
    }
    // A growing presentation has no text tracks yet (they are published with the VOD playlists).
    assert.doesNotMatch(writeMultivariantPlaylist({ ...p, complete: false }, textUrls), /SUBTITLES/);
  });

  it('writes a text playlist of segment windows, or one whole-file segment', () => {
    const t = subs[0]!;
    const seg = writeTextPlaylist(t, p, textUrls, { segmentDuration: 2 });
    assert.equal(
      seg,
      [
        '#EXTM3U',
        '#EXT-X-VERSION:7',
        '#EXT-X-TARGETDURATION:2',
        '#EXT-X-MEDIA-SEQUENCE:0',
        '#EXT-X-PLAYLIST-TYPE:VOD',
        '#EXTINF:2,',
        'caaaaaaaaaaaa/0.vtt',
        '#EXTINF:2,',
        'caaaaaaaaaaaa/1.vtt',
        '#EXTINF:2,',
        'caaaaaaaaaaaa/2.vtt',
        '#EXTINF:1.007,',
        'caaaaaaaaaaaa/3.vtt',
        '#EXT-X-ENDLIST',
        '',
      ].join('\n'),
    );
    const single = writeTextPlaylist(t, p, textUrls, { segmentDuration: 2, single: true });
    assert.match(single, /#EXT-X-TARGETDURATION:7\n[\s\S]*#EXTINF:7.007,\ncaaaaaaaaaaaa.vtt\n#EXT-X-ENDLIST/);
  });

  it('an audio-only presentation with several languages is one variant with the others as alternatives', () => {
    const text = writeMultivariantPlaylist({ complete: true, renditions: [en, fr], duration: 7 }, textUrls);
    const inf = text.split('\n').filter((l) => l.startsWith('#EXT-X-STREAM-INF'));
    assert.equal(inf.length, 1);
    assert.match(inf[0]!, /CODECS="mp4a.40.2",AUDIO="audio"$/);
    assert.equal(text.split('\n')[text.split('\n').indexOf(inf[0]!) + 1], 'a0/index.m3u8');
  });
});

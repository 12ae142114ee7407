// The player lab: one page per matrix cell, loaded from another origin than the media. ?player=…&url=…&type=…
// Loads one player library, plays the URL, and exposes window.lab = { state, errors, heights, … } plus
// window.labForce(height) for the test to drive, and window.labTracks for text and audio tracks through each
// player's own API (the cues themselves are read from video.textTracks: all three render natively here).
// Plain browser JavaScript (no build).
const q = new URLSearchParams(location.search);
const player = q.get('player');
const url = q.get('url');
const video = document.querySelector('video');
const lab = { state: 'loading', errors: [], heights: [], version: '' };
window.lab = lab;
video.muted = true;
video.addEventListener('error', () => lab.errors.push(`video element: ${video.error?.code} ${video.error?.message}`));

function load(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.append(s);
  });
}

async function start() {
  if (player === 'hls.js') {
    await load('/lib/hls.js');
    const hls = new Hls({ capLevelToPlayerSize: false });
    lab.version = Hls.version;
    hls.on(Hls.Events.ERROR, (_e, d) => {
      if (d.fatal) lab.errors.push(`hls.js ${d.type} ${d.details}`);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      lab.heights = hls.levels.map((l) => l.height);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    window.labForce = (h) => {
      hls.currentLevel = hls.levels.findIndex((l) => l.height === h);
    };
    let audioSwitched = '';
    hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, (_e, d) => {
      audioSwitched = hls.audioTracks[d.id]?.lang ?? '';
    });
    window.labTracks = {
      text: () => hls.subtitleTracks.map((t) => ({ lang: t.lang ?? '', label: t.name })),
      selectText(lang) {
        hls.subtitleTrack = hls.subtitleTracks.findIndex((t) => t.lang === lang);
        hls.subtitleDisplay = true;
      },
      audio: () => hls.audioTracks.map((t) => ({ lang: t.lang ?? '', label: t.name })),
      selectAudio(lang) {
        hls.audioTrack = hls.audioTracks.findIndex((t) => t.lang === lang);
      },
      // The language of the track hls.js has switched to (AUDIO_TRACK_SWITCHED), not just the one asked for.
      activeAudio: () => (hls.audioTracks[hls.audioTrack]?.lang === audioSwitched ? audioSwitched : ''),
    };
  } else if (player === 'dash.js') {
    await load('/lib/dash.all.min.js');
    // The Smooth Streaming module registers itself with the player when loaded after it.
    await load('/lib/dash.mss.min.js');
    const p = dashjs.MediaPlayer().create();
    lab.version = p.getVersion();
    p.on(dashjs.MediaPlayer.events.ERROR, (e) =>
      lab.errors.push(`dash.js ${JSON.stringify(e.error ?? e).slice(0, 300)}`),
    );
    p.on(dashjs.MediaPlayer.events.STREAM_INITIALIZED, () => {
      lab.heights = p.getRepresentationsByType('video').map((r) => r.height);
    });
    p.initialize(video, url, false);
    window.labForce = (h) => {
      p.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
      const reps = p.getRepresentationsByType('video');
      p.setRepresentationForTypeByIndex(
        'video',
        reps.findIndex((r) => r.height === h),
        true,
      );
    };
    // setTextTrack takes an index into the text tracks dash.js announced (TEXT_TRACKS_ADDED), in that order.
    let textInfos = [];
    p.on(dashjs.MediaPlayer.events.TEXT_TRACKS_ADDED, (e) => {
      textInfos = e.tracks;
    });
    const lang = (m) => m.lang ?? '';
    const label = (m) => m.labels?.[0]?.text ?? '';
    window.labTracks = {
      text: () => textInfos.map((m) => ({ lang: lang(m), label: label(m) })),
      selectText(l) {
        p.enableText(true);
        p.setTextTrack(textInfos.findIndex((m) => lang(m) === l));
      },
      audio: () => p.getTracksFor('audio').map((m) => ({ lang: lang(m), label: label(m) })),
      selectAudio(l) {
        p.setCurrentTrack(p.getTracksFor('audio').find((m) => lang(m) === l));
      },
      activeAudio: () => lang(p.getCurrentTrackFor('audio') ?? {}),
    };
  } else if (player === 'shaka') {
    await load('/lib/shaka5.js');
    shaka.polyfill.installAll();
    const p = new shaka.Player();
    lab.version = shaka.Player.version;
    await p.attach(video);
    p.addEventListener('error', (e) => lab.errors.push(`shaka ${e.detail?.code} ${e.detail?.message ?? ''}`));
    const mime = q.get('type') || undefined;
    // &text=LANG: that text track chosen at load (Shaka then streams and shows it from the start).
    if (q.get('text')) p.configure({ preferredText: [{ language: q.get('text') }] });
    // &abr=0: no adaptive switching (a switch appends video, which changes what the feature checks see).
    if (q.get('abr') === '0') p.configure({ abr: { enabled: false } });
    await p.load(url, null, mime);
    lab.heights = [...new Set(p.getVariantTracks().map((t) => t.height))];
    window.labForce = (h) => {
      p.configure({ abr: { enabled: false } });
      p.selectVariantTrack(
        p.getVariantTracks().find((t) => t.height === h),
        true,
      );
    };
    // Without a UI video container Shaka displays text through NativeTextDisplayer (video.textTracks).
    window.labTracks = {
      text: () => p.getTextTracks().map((t) => ({ lang: t.language, label: t.label ?? '' })),
      selectText(lang) {
        p.selectTextTrack(p.getTextTracks().find((t) => t.language === lang));
        // Shaka 5 shows a track once it is selected; 4.x also needed the visibility switched on.
        p.setTextTrackVisibility?.(true);
      },
      audio: () => p.getAudioTracks().map((t) => ({ lang: t.language, label: t.label ?? '' })),
      selectAudio(lang) {
        p.selectAudioTrack(p.getAudioTracks().find((t) => t.language === lang));
      },
      activeAudio: () => p.getAudioTracks().find((t) => t.active)?.language ?? '',
    };
  } else if (player === 'video') {
    // Progressive download(s): url is a comma-separated list of MP4s; "switching" loads another at the same time.
    const files = url.split(',');
    lab.version = navigator.userAgent.match(/Chrome\/[\d.]+/)?.[0] ?? 'chromium';
    video.src = files[0];
    const heights = JSON.parse(q.get('heights') || '[]');
    lab.heights = heights;
    window.labForce = (h) => {
      const t = video.currentTime;
      video.src = files[heights.indexOf(h)];
      video.currentTime = t;
      void video.play().catch((e) => lab.errors.push(String(e)));
    };
  } else {
    throw new Error(`unknown player ${player}`);
  }
  video.playbackRate = 2;
  await video.play().catch(async () => {
    await new Promise((r) => video.addEventListener('canplay', r, { once: true }));
    await video.play();
  });
  video.playbackRate = 2;
  lab.state = 'playing';
}

/** Active cues of the text tracks the page shows (what the viewer sees), as plain data. */
window.labCues = () =>
  [...video.textTracks]
    .filter((t) => t.mode === 'showing')
    .flatMap((t) =>
      [...(t.activeCues ?? [])].map((c) => ({
        text: c.text,
        startTime: c.startTime,
        endTime: c.endTime,
        track: `${t.kind}:${t.language}:${t.label}:${t.mode}`,
      })),
    );

start().catch((e) => {
  lab.errors.push(`start: ${e?.message ?? e} ${e?.data ? JSON.stringify(e.data).slice(0, 400) : ''}`);
  lab.state = 'failed';
});

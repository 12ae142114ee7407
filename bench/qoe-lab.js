// The QoE lab's page script (bench/qoe.ts). Two parts:
//
// 1. The monitor, in every page the lab opens: the lab's own page (/qoe.html, loaded as its script) and the
//    platform's watch page (added by the lab as an init script, so it runs before the page's own scripts). It keeps
//    raw, timestamped (performance.now(), ms since navigation) records in window.qoe for bench/qoe.ts to analyse:
//    the main video element's events (captured on window: media events do not bubble, but capture sees them),
//    a 100 ms sample of currentTime / paused / readyState, the first `playing` after which currentTime advances
//    (startup), the rendered video quality from the player's own events (Shaka `mediaqualitychanged`, hls.js
//    FRAG_CHANGED, dash.js QUALITY_CHANGE_RENDERED), Shaka's `buffering` events, `resize` (videoHeight), the page's
//    visibility, and errors. window.qoeAttach(kind, player, lib) hooks a player; the watch page's Shaka player is
//    found as window.smoothcastPlayer once it is there.
// 2. On /qoe.html only: one player with its defaults on ?url= (?player=shaka|hls.js|dash.js), muted autoplay.
//
// Plain browser JavaScript (no build).
(() => {
  if (window.qoe) return;
  const now = () => performance.now();
  const q = {
    kind: '',
    version: '',
    /** performance.now() of the player's load call (lab pages). */
    loadCallAt: null,
    /** The first `playing`, and the moment after it that currentTime started advancing (ms since navigation). */
    playingAt: null,
    startupAt: null,
    /** [t, type, currentTime, readyState] of the main video element's events. */
    events: [],
    /** [t, currentTime, paused ? 1 : 0, readyState, videoHeight] every 100 ms once the video exists. */
    samples: [],
    /** [t, height, bandwidth] of the rendered video quality, from the player's own events. */
    quality: [],
    /** [t, buffering ? 1 : 0] from Shaka's `buffering` events. */
    buffering: [],
    /** [t, videoHeight] from `resize`. */
    resize: [],
    visibility: [[0, document.visibilityState]],
    errors: [],
    plays: 0,
  };
  window.qoe = q;
  const cap = (arr, x, max = 20000) => {
    if (arr.length < max) arr.push(x);
  };
  const mainVideo = () => document.getElementById('video') ?? document.querySelector('video');
  const isMain = (t) => t instanceof HTMLVideoElement && t === mainVideo();

  document.addEventListener('visibilitychange', () => q.visibility.push([now(), document.visibilityState]));
  const MEDIA_EVENTS = [
    'loadstart',
    'loadedmetadata',
    'loadeddata',
    'canplay',
    'canplaythrough',
    'play',
    'playing',
    'waiting',
    'stalled',
    'pause',
    'seeking',
    'seeked',
    'ended',
    'ratechange',
    'error',
  ];
  for (const type of MEDIA_EVENTS) {
    window.addEventListener(
      type,
      (e) => {
        if (!isMain(e.target)) return;
        const v = e.target;
        cap(q.events, [now(), type, v.currentTime, v.readyState, v.playbackRate]);
        if (type === 'play') q.plays++;
        if (type === 'playing' && q.startupAt === null) {
          q.playingAt ??= now();
          q.pendingFrom = { at: now(), ct: v.currentTime };
        }
        if (type === 'error') q.errors.push(`video: ${v.error?.code} ${v.error?.message ?? ''}`);
      },
      true,
    );
  }
  window.addEventListener(
    'resize',
    (e) => {
      if (isMain(e.target)) cap(q.resize, [now(), e.target.videoHeight]);
    },
    true,
  );

  // Startup: after a `playing`, the first sample where currentTime has moved on; the start is put back by the media
  // time played since (at rate 1), so the 100 ms sampling does not blur it.
  const sampler = setInterval(() => {
    const v = mainVideo();
    if (!v) return;
    const t = now();
    cap(q.samples, [t, v.currentTime, v.paused ? 1 : 0, v.readyState, v.videoHeight], 40000);
    const p = q.pendingFrom;
    if (q.startupAt === null && p && !v.paused && v.currentTime > p.ct + 0.05) {
      q.startupAt = Math.max(p.at, t - (v.currentTime - p.ct) * 1000);
    }
  }, 100);
  q.stopSampling = () => clearInterval(sampler);

  let attached = null;
  window.qoeAttach = (kind, player, lib) => {
    if (attached) return;
    attached = player;
    q.kind = kind;
    if (kind === 'shaka') {
      q.version = lib?.Player?.version ?? player.constructor?.version ?? '';
      player.addEventListener('mediaqualitychanged', (e) => {
        const m = e.mediaQuality;
        if (m?.contentType === 'video') cap(q.quality, [now(), m.height ?? 0, m.bandwidth ?? 0]);
      });
      player.addEventListener('buffering', (e) => cap(q.buffering, [now(), e.buffering ? 1 : 0]));
      player.addEventListener('error', (e) => q.errors.push(`shaka ${e.detail?.code} ${e.detail?.message ?? ''}`));
      // Attached after load (the watch page): what it is doing now.
      if (player.isBuffering?.()) cap(q.buffering, [now(), 1]);
    } else if (kind === 'hls.js') {
      q.version = lib.version;
      player.on(lib.Events.FRAG_CHANGED, (_e, d) => {
        if (d.frag?.type !== 'main') return;
        const l = player.levels[d.frag.level];
        if (l) cap(q.quality, [now(), l.height ?? 0, l.bitrate ?? 0]);
      });
      player.on(lib.Events.ERROR, (_e, d) => {
        if (d.fatal) q.errors.push(`hls.js ${d.type} ${d.details}`);
      });
    } else if (kind === 'dash.js') {
      q.version = player.getVersion();
      player.on(lib.MediaPlayer.events.QUALITY_CHANGE_RENDERED, (e) => {
        if (e.mediaType !== 'video') return;
        const r = e.newRepresentation;
        cap(q.quality, [now(), r?.height ?? 0, r?.bandwidth ?? 0]);
      });
      player.on(lib.MediaPlayer.events.ERROR, (e) =>
        q.errors.push(`dash.js ${JSON.stringify(e.error ?? e).slice(0, 300)}`),
      );
    }
  };
  // The watch page exposes its Shaka player once loaded.
  const finder = setInterval(() => {
    if (attached) return clearInterval(finder);
    const p = window.smoothcastPlayer;
    if (p) {
      window.qoeAttach('shaka', p);
      clearInterval(finder);
    }
  }, 20);

  /** The lab's start when autoplay did not happen: muted play() if the media is loaded and nothing played yet. */
  window.qoeFallbackPlay = () => {
    const v = mainVideo();
    if (!v || q.plays > 0 || v.readyState < 1) return false;
    v.muted = true;
    v.play().catch(() => {});
    return true;
  };

  /** Everything so far, plus the playback quality counters and the time now. */
  window.qoeCollect = () => {
    const v = mainVideo();
    const pq = v?.getVideoPlaybackQuality?.();
    const { stopSampling: _s, pendingFrom: _p, ...rest } = q;
    return {
      ...rest,
      now: now(),
      visibilityNow: document.visibilityState,
      dropped: pq?.droppedVideoFrames ?? 0,
      totalFrames: pq?.totalVideoFrames ?? 0,
      currentTime: v?.currentTime ?? null,
      paused: v?.paused ?? null,
      hasVideo: !!v,
      // The watch page says why its adaptation chose what plays (SmoothAbr's reason, or "Shaka ABR").
      abrReason: document.querySelector('.abr-reason')?.textContent ?? null,
    };
  };
})();

if (location.pathname === '/qoe.html') {
  const params = new URLSearchParams(location.search);
  const kind = params.get('player');
  const url = params.get('url');
  const video = document.querySelector('video');
  const q = window.qoe;
  video.muted = true;
  video.autoplay = true;
  const load = (src) =>
    new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error(`cannot load ${src}`));
      document.head.append(s);
    });
  const play = () => video.play().catch(() => {});
  (async () => {
    if (kind === 'shaka') {
      await load('/lib/shaka5.js');
      shaka.polyfill.installAll();
      const p = new shaka.Player();
      await p.attach(video);
      window.qoeAttach('shaka', p, shaka);
      q.loadCallAt = performance.now();
      await p.load(url);
      await play();
    } else if (kind === 'hls.js') {
      await load('/lib/hls.js');
      const hls = new Hls();
      window.qoeAttach('hls.js', hls, Hls);
      q.loadCallAt = performance.now();
      hls.on(Hls.Events.MANIFEST_PARSED, play);
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (kind === 'dash.js') {
      await load('/lib/dash.all.min.js');
      const p = dashjs.MediaPlayer().create();
      window.qoeAttach('dash.js', p, dashjs);
      q.loadCallAt = performance.now();
      p.initialize(video, url, true);
    } else {
      throw new Error(`unknown player ${kind}`);
    }
  })().catch((e) => q.errors.push(`start: ${e?.message ?? e} ${e?.data ? JSON.stringify(e.data).slice(0, 300) : ''}`));
}

// The live player lab: one page per player, loaded from another origin than the media (live.serial-test.ts, bench/live.ts).
// ?player=hls.js|dash.js|shaka &url=… and, per player:
//   hls.js   &ll=1|0     lowLatencyMode (LL-HLS parts and blocking reload) or standard HLS (whole segments)
//   dash.js  &ll=1       liveCatchup on (dash.js's low-latency playback-rate control, targets from the MPD's
//                        ServiceDescription); &delay=S sets streaming.delay.liveDelay. Smooth Streaming URLs play
//                        through the MSS module, as in the VOD lab.
//   shaka    &ll=1       streaming.lowLatencyMode
// &cap=1 (every player): no rendition above the 640×360 element (the parallel pages of live.serial-test.ts share two cores
// with the publisher and the ladder).
// Exposes window.lab = { state, errors, version, events } and window.labLive.{ sample(), seekBack(s), … } for the
// test to read: the playhead's wall-clock time as the player maps it (hls.js playingDate from PROGRAM-DATE-TIME,
// dash.js timeAsUTC from availabilityStartTime, Shaka getPlayheadTimeAsDate), the player's own latency estimate.
// Plain browser JavaScript (no build). Playback rate stays 1: these are live streams.
const q = new URLSearchParams(location.search);
const player = q.get('player');
const url = q.get('url');
const ll = q.get('ll') === '1';
const cap = q.get('cap') === '1';
/** &debug=1: the players' debug builds (readable stacks). */
const lib = (min, debug) => `/lib/${q.get('debug') === '1' ? debug : min}`;
const video = document.querySelector('video');
const lab = { state: 'loading', errors: [], version: '', events: [] };
window.lab = lab;
video.muted = true;
video.addEventListener('error', () => lab.errors.push(`video element: ${video.error?.code} ${video.error?.message}`));
const note = (s) => {
  if (lab.events.length < 200) lab.events.push(`${(performance.now() / 1000).toFixed(1)}s ${s}`);
};
for (const e of ['waiting', 'stalled', 'seeking', 'seeked', 'ended']) video.addEventListener(e, () => note(e));

function load(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.append(s);
  });
}

function buffered() {
  const b = video.buffered;
  const out = [];
  for (let i = 0; i < b.length; i++) out.push(`${b.start(i).toFixed(2)}-${b.end(i).toFixed(2)}`);
  return out.join(',');
}

/** Per player: the playhead as a wall-clock time (ms), the player's own latency estimate (s), its settings. */
let probe = () => ({ playheadMs: null, playerLatency: null, target: null, lowLatency: null });
let seek = (_t) => {};

async function start() {
  if (player === 'hls.js') {
    await load(lib('hls.js', 'hls.debug.js'));
    const hls = new Hls({ lowLatencyMode: ll, capLevelToPlayerSize: cap });
    window.labHls = hls;
    lab.version = Hls.version;
    hls.on(Hls.Events.ERROR, (_e, d) => {
      const what = `hls.js ${d.type} ${d.details}${d.response ? ` ${d.response.code} ${d.frag?.url ?? d.url ?? ''}` : ''}`;
      if (d.fatal) lab.errors.push(what);
      else note(what);
    });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => note(`level ${hls.levels[d.level]?.height}p`));
    hls.loadSource(url);
    hls.attachMedia(video);
    probe = () => ({
      playheadMs: hls.playingDate ? hls.playingDate.getTime() : null,
      playerLatency: Number.isFinite(hls.latency) ? hls.latency : null,
      target: Number.isFinite(hls.targetLatency) ? hls.targetLatency : null,
      lowLatency: hls.lowLatencyMode,
      height: hls.levels[hls.currentLevel]?.height ?? null,
    });
    seek = (t) => {
      video.currentTime = t;
    };
  } else if (player === 'dash.js') {
    await load(lib('dash.all.min.js', 'dash.all.debug.js'));
    // The Smooth Streaming module registers itself with the player when loaded after it.
    await load(lib('dash.mss.min.js', 'dash.mss.debug.js'));
    const p = dashjs.MediaPlayer().create();
    window.labDash = p;
    lab.version = p.getVersion();
    const streaming = cap ? { abr: { limitBitrateByPortal: true } } : {};
    if (ll) streaming.liveCatchup = { enabled: true, mode: 'liveCatchupModeDefault' };
    if (q.get('delay')) streaming.delay = { liveDelay: Number(q.get('delay')) };
    // &time=URL: the clock dash.js syncs to when the manifest names none (a Smooth manifest cannot); its built-in
    // default is time.akamai.com, which a sandbox cannot reach.
    if (q.get('time')) {
      streaming.utcSynchronization = {
        defaultTimingSource: { scheme: 'urn:mpeg:dash:utc:http-iso:2014', value: q.get('time') },
      };
    }
    // &log=N: dash.js's own log at that level (5 = debug) on the console.
    p.updateSettings({ streaming, ...(q.get('log') ? { debug: { logLevel: Number(q.get('log')) } } : {}) });
    p.on(dashjs.MediaPlayer.events.ERROR, (e) =>
      lab.errors.push(`dash.js ${JSON.stringify(e.error ?? e).slice(0, 300)}`),
    );
    p.on(dashjs.MediaPlayer.events.QUALITY_CHANGE_RENDERED, (e) =>
      note(`${e.mediaType} quality ${e.newRepresentation?.height ?? e.newQuality ?? ''}`),
    );
    p.initialize(video, url, true);
    probe = () => {
      const utc = p.isReady() ? p.timeAsUTC() : Number.NaN;
      const lat = p.isReady() ? p.getCurrentLiveLatency() : Number.NaN;
      const target = p.isReady() ? p.getTargetLiveDelay() : Number.NaN;
      return {
        playheadMs: Number.isFinite(utc) && utc > 0 ? utc * 1000 : null,
        playerLatency: Number.isFinite(lat) ? lat : null,
        target: Number.isFinite(target) ? target : null,
        lowLatency: p.isReady() ? p.getLowLatencyModeEnabled() : null,
        height: p.isReady() ? (p.getCurrentRepresentationForType('video')?.height ?? null) : null,
      };
    };
    // dash.js's seek() and time() count from the start of the DVR window on a live stream.
    seek = (t) => p.seek(t - video.currentTime + p.time());
  } else if (player === 'shaka') {
    await load(lib('shaka5.js', 'shaka5.debug.js'));
    shaka.polyfill.installAll();
    const p = new shaka.Player();
    window.labShaka = p;
    lab.version = shaka.Player.version;
    await p.attach(video);
    p.addEventListener('error', (e) => lab.errors.push(`shaka ${e.detail?.code} ${e.detail?.message ?? ''}`));
    p.configure({ streaming: { lowLatencyMode: ll }, abr: { restrictToElementSize: cap } });
    await p.load(url, null, q.get('type') || undefined);
    probe = () => {
      const d = p.getPlayheadTimeAsDate();
      const range = p.seekRange();
      return {
        playheadMs: d ? d.getTime() : null,
        // Shaka has no latency getter: its distance from the end of the seek range (the live edge it plays to).
        playerLatency: Number.isFinite(range.end) ? range.end - video.currentTime : null,
        target: null,
        lowLatency: p.getConfiguration().streaming.lowLatencyMode,
        height: p.getVariantTracks().find((t) => t.active)?.height ?? null,
      };
    };
    seek = (t) => {
      video.currentTime = t;
    };
  } else {
    throw new Error(`unknown player ${player}`);
  }
  if (player === 'dash.js') {
    // dash.js autoplays: a play() of our own before it listens to the element would take its 'play' event, and
    // dash.js only starts refreshing a dynamic MPD on that event (ManifestUpdater waits for PLAYBACK_STARTED).
    await new Promise((r) => video.addEventListener('playing', r, { once: true }));
  } else {
    await video.play().catch(async () => {
      await new Promise((r) => video.addEventListener('canplay', r, { once: true }));
      await video.play();
    });
  }
  lab.state = 'playing';
}

window.labLive = {
  /** One look at the player: times in seconds, latency = now − the playhead's wall-clock time. */
  sample() {
    const now = Date.now();
    const pr = probe();
    return {
      now,
      currentTime: video.currentTime,
      readyState: video.readyState,
      paused: video.paused,
      buffered: buffered(),
      seekable: video.seekable.length ? [video.seekable.start(0), video.seekable.end(video.seekable.length - 1)] : null,
      playheadMs: pr.playheadMs,
      latency: pr.playheadMs === null ? null : (now - pr.playheadMs) / 1000,
      playerLatency: pr.playerLatency,
      target: pr.target,
      lowLatency: pr.lowLatency,
      height: pr.height ?? video.videoHeight,
    };
  },
  /** Seeks `seconds` back from the playhead (dash.js through its own DVR-relative seek). */
  seekBack(seconds) {
    note(`seek back ${seconds} s from ${video.currentTime.toFixed(2)}`);
    seek(video.currentTime - seconds);
  },
};

start().catch((e) => {
  const stack = q.get('debug') === '1' && e?.stack ? ` ${e.stack.split('\n').slice(1, 6).join(' ')}` : '';
  lab.errors.push(`start: ${e?.message ?? e} ${e?.data ? JSON.stringify(e.data).slice(0, 400) : ''}${stack}`);
  lab.state = 'failed';
});

// The security lab (security-playback.test.ts): one page per cell, on another origin than the media.
// ?player=hls.js|dash.js|shaka&url=MANIFEST[&license=CLEARKEY_LICENCE_URL][&eme=1][&debug=1]
// Plays the manifest with the player's own handling of tokens and keys: nothing but the manifest URL (its ?token=)
// and, when given, a ClearKey licence URL in the player's DRM configuration (hls.js: with &eme=1, its EME
// support for KEYFORMAT="org.w3.clearkey" keys). Exposes window.lab = { state, errors, version, log } and
// window.labQuality() (the video element's decoded frames). Plain browser JavaScript (no build).
const q = new URLSearchParams(location.search);
const player = q.get('player');
const url = q.get('url');
const license = q.get('license');
const debug = q.get('debug') === '1';
const video = document.querySelector('video');
const lab = { state: 'loading', errors: [], version: '', log: [] };
window.lab = lab;
video.muted = true;
video.addEventListener('error', () => lab.errors.push(`video element: ${video.error?.code} ${video.error?.message}`));
// What the player logged at warning level or above (debug builds log much more; kept short).
for (const level of ['warn', 'error']) {
  const orig = console[level].bind(console);
  console[level] = (...args) => {
    if (lab.log.length < 200)
      lab.log.push(`${level}: ${args.map((a) => String(a?.message ?? a)).join(' ')}`.slice(0, 400));
    orig(...args);
  };
}

window.labQuality = () => {
  const qy = video.getVideoPlaybackQuality();
  return {
    currentTime: video.currentTime,
    totalVideoFrames: qy.totalVideoFrames,
    droppedVideoFrames: qy.droppedVideoFrames,
    videoWidth: video.videoWidth,
    readyState: video.readyState,
    mediaKeys: video.mediaKeys !== null,
  };
};

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
    await load(debug ? '/lib/hls.debug.js' : '/lib/hls.js');
    const config = { capLevelToPlayerSize: false, debug: debug };
    if (q.get('eme') === '1') {
      config.emeEnabled = true;
      config.drmSystems = { 'org.w3.clearkey': license ? { licenseUrl: license } : {} };
    }
    const hls = new Hls(config);
    lab.version = Hls.version;
    hls.on(Hls.Events.ERROR, (_e, d) => {
      const what = `hls.js ${d.type} ${d.details}${d.response?.code ? ` ${d.response.code}` : ''}${d.error ? ` ${d.error.message}` : ''}`;
      if (d.fatal) lab.errors.push(what);
      else lab.log.push(`non-fatal: ${what}`);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (player === 'dash.js') {
    await load(debug ? '/lib/dash.all.debug.js' : '/lib/dash.all.min.js');
    const p = dashjs.MediaPlayer().create();
    lab.version = p.getVersion();
    if (debug) p.updateSettings({ debug: { logLevel: dashjs.Debug.LOG_LEVEL_DEBUG } });
    p.on(dashjs.MediaPlayer.events.ERROR, (e) =>
      lab.errors.push(`dash.js ${JSON.stringify(e.error ?? e).slice(0, 300)}`),
    );
    for (const ev of ['KEY_SYSTEM_SELECTED', 'KEY_SESSION_CREATED', 'LICENSE_REQUEST_COMPLETE']) {
      const name = dashjs.MediaPlayer.events[ev] ?? dashjs.Protection?.events?.[ev];
      if (name)
        p.on(name, (e) => lab.log.push(`dash.js ${ev}${e?.error ? ` ${JSON.stringify(e.error).slice(0, 200)}` : ''}`));
    }
    if (license) p.setProtectionData({ 'org.w3.clearkey': { serverURL: license } });
    p.initialize(video, url, false);
  } else if (player === 'shaka') {
    await load(debug ? '/lib/shaka5.debug.js' : '/lib/shaka5.js');
    shaka.polyfill.installAll();
    if (debug) shaka.log?.setLevel?.(shaka.log.Level.DEBUG);
    const p = new shaka.Player();
    lab.version = shaka.Player.version;
    await p.attach(video);
    p.addEventListener('error', (e) =>
      lab.errors.push(
        `shaka ${e.detail?.code} ${e.detail?.message ?? ''} ${JSON.stringify(e.detail?.data ?? []).slice(0, 300)}`,
      ),
    );
    if (license) p.configure({ drm: { servers: { 'org.w3.clearkey': license } } });
    await p.load(url);
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

start().catch((e) => {
  lab.errors.push(`start: ${e?.code ?? ''} ${e?.message ?? e} ${e?.data ? JSON.stringify(e.data).slice(0, 400) : ''}`);
  lab.state = 'failed';
});

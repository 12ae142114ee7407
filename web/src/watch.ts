// The watch page: Shaka Player on the asset's DASH manifest (HLS while it is still encoding), with our own
// controls: play/pause, seek bar showing buffered ranges, time, mute, automatic or manual quality, the rendition
// playing and the estimated bandwidth, fullscreen, and keys (space, ←/→, f, m). Embed snippet and URLs below.
import shaka from 'shaka-player/dist/shaka-player.compiled.js';
import { type Asset, api, clock, el } from './api.ts';

type Track = shaka.extern.Track;

const SVG = 'http://www.w3.org/2000/svg';
/** A 24×24 icon from one path (no icon font: Debian's chromium has no emoji glyphs). */
function icon(d: string): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '20');
  svg.setAttribute('height', '20');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}
const ICONS = {
  play: 'M8 5v14l11-7z',
  pause: 'M6 5h4v14H6zm8 0h4v14h-4z',
  volume: 'M3 9v6h4l5 5V4L7 9H3zm13.5 3A4.5 4.5 0 0 0 14 8v8a4.5 4.5 0 0 0 2.5-4z',
  muted: 'M3 9v6h4l5 5V4L7 9H3zm13.6 3 2.7-2.7-1.4-1.4-2.7 2.7-2.7-2.7-1.4 1.4 2.7 2.7-2.7 2.7 1.4 1.4 2.7-2.7 2.7 2.7 1.4-1.4z',
  fullscreen: 'M5 5h5v2H7v3H5zm9 0h5v5h-2V7h-3zM5 14h2v3h3v2H5zm12 0h2v5h-5v-2h3z',
};

function mbps(bits: number): string {
  return `${(bits / 1e6).toFixed(bits >= 1e7 ? 0 : 1)} Mb/s`;
}

function copyRow(label: string, value: string): HTMLElement {
  const field = el('input', { type: 'text', readonly: '', value, 'aria-label': label });
  const btn = el('button', { type: 'button', 'aria-label': `Copy ${label}` }, 'Copy');
  btn.addEventListener('click', () => {
    field.select();
    void navigator.clipboard?.writeText(value).then(
      () => {
        btn.textContent = 'Copied';
      },
      () => {},
    );
  });
  return el('div', { class: 'copy' }, el('span', { class: 'label', text: label }), field, btn);
}

interface ThumbCue {
  start: number;
  end: number;
  url: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Reads a WebVTT thumbnail track: cues whose text is `sheet.jpg#xywh=x,y,w,h` (relative to the track). */
async function loadThumbnails(track: string): Promise<ThumbCue[]> {
  const res = await fetch(track);
  if (!res.ok) return [];
  const text = await res.text();
  const time = (s: string) => s.split(':').reduce((acc, part) => acc * 60 + Number(part), 0);
  const cues: ThumbCue[] = [];
  for (const block of text.split(/\n\n+/)) {
    const m = /([\d:.]+) --> ([\d:.]+)\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)/.exec(block);
    if (!m) continue;
    cues.push({
      start: time(m[1]!),
      end: time(m[2]!),
      url: new URL(m[3]!, track).href,
      x: Number(m[4]),
      y: Number(m[5]),
      w: Number(m[6]),
      h: Number(m[7]),
    });
  }
  return cues;
}

export async function renderWatch(app: HTMLElement, id: string): Promise<void> {
  let asset: Asset;
  try {
    asset = await api.get(id);
  } catch (err) {
    app.replaceChildren(el('h1', { text: 'Video not found' }), el('p', { text: (err as Error).message }));
    return;
  }
  const video = el('video', { id: 'video', playsinline: '', preload: 'auto', 'aria-label': asset.title });
  if (asset.playback.poster) video.poster = asset.playback.poster;
  // Disabled until the stream is loaded: a play() before that would have nothing to play.
  const playBtn = el('button', { type: 'button', class: 'play', 'aria-label': 'Play', disabled: '' }, icon(ICONS.play));
  const seek = el('input', { type: 'range', class: 'seek', min: '0', max: '0', step: '0.1', value: '0', 'aria-label': 'Seek' });
  const time = el('span', { class: 'time', 'aria-live': 'off', text: '0:00 / 0:00' });
  const muteBtn = el(
    'button',
    { type: 'button', class: 'mute', 'aria-label': 'Mute', 'aria-pressed': 'false' },
    icon(ICONS.volume),
  );
  const quality = el('select', { class: 'quality', 'aria-label': 'Quality' }, el('option', { value: 'auto', text: 'Auto' }));
  const fsBtn = el('button', { type: 'button', class: 'fullscreen', 'aria-label': 'Fullscreen' }, icon(ICONS.fullscreen));
  const current = el('span', { class: 'current', 'aria-live': 'polite' });
  const bandwidth = el('span', { class: 'bandwidth' });
  const message = el('p', { class: 'message', role: 'alert' });
  const controls = el(
    'div',
    { class: 'controls' },
    playBtn,
    seek,
    time,
    muteBtn,
    quality,
    fsBtn,
  );
  const preview = el('div', { class: 'preview', hidden: '', 'aria-hidden': 'true' });
  const frame = el('div', { class: 'player', tabindex: '-1' }, video, preview, controls);
  const origin = location.origin;
  const abs = (u: string | null) => (u ? new URL(u, origin).href : '');
  const embed = `<iframe src="${origin}/watch/${id}?embed" width="960" height="540" allow="fullscreen" style="border:0" title="${asset.title.replace(/"/g, '&quot;')}"></iframe>`;
  app.replaceChildren(
    el('h1', { text: asset.title }),
    frame,
    el('p', { class: 'stats' }, current, ' · ', bandwidth),
    message,
    el(
      'section',
      { class: 'share', 'aria-label': 'Share' },
      el('h2', { text: 'Share' }),
      copyRow('Embed code', embed),
      copyRow('HLS URL', abs(asset.playback.hls)),
      ...(asset.playback.dash ? [copyRow('DASH URL', abs(asset.playback.dash))] : []),
      ...(asset.playback.hlsByteRange ? [copyRow('HLS (byte ranges)', abs(asset.playback.hlsByteRange))] : []),
      ...(asset.playback.dashSegmentBase ? [copyRow('DASH (SegmentBase)', abs(asset.playback.dashSegmentBase))] : []),
      ...(asset.playback.poster ? [copyRow('Poster URL', abs(asset.playback.poster))] : []),
      ...(asset.playback.downloads.length
        ? [
            el(
              'p',
              { class: 'downloads' },
              'Download MP4: ',
              ...asset.playback.downloads.flatMap((d, i) => [
                i ? ' · ' : '',
                el('a', { href: d.url, download: '', text: `${d.height}p (${mbps(d.bitrate)})` }),
              ]),
            ),
          ]
        : []),
    ),
  );

  if (!asset.playable) {
    message.textContent = asset.status === 'failed' ? `This video failed: ${asset.error?.message}` : 'Not playable yet…';
    return;
  }
  shaka.polyfill.installAll();
  if (!shaka.Player.isBrowserSupported()) {
    message.textContent = 'This browser cannot play adaptive streams (no Media Source Extensions).';
    return;
  }
  const player = new shaka.Player();
  (window as unknown as { smoothcastPlayer: shaka.Player }).smoothcastPlayer = player;
  await player.attach(video);
  player.addEventListener('error', (e) => {
    const detail = (e as unknown as { detail: shaka.util.Error }).detail;
    message.textContent = `Playback error ${detail.code}`;
  });
  // ?format= picks one delivery (hls, dash, hls-byterange, dash-segmentbase); default: DASH once complete, else HLS.
  const formats: Record<string, string | null> = {
    hls: asset.playback.hls,
    dash: asset.playback.dash,
    'hls-byterange': asset.playback.hlsByteRange,
    'dash-segmentbase': asset.playback.dashSegmentBase,
  };
  const format = new URLSearchParams(location.search).get('format');
  const src = format ? formats[format] : (asset.playback.dash ?? asset.playback.hls);
  if (!src) {
    message.textContent = `No ${format} stream for this video (yet).`;
    return;
  }
  try {
    await player.load(abs(src));
  } catch (err) {
    message.textContent = `Could not load the stream: ${(err as { code?: number }).code ?? err}`;
    return;
  }

  // Quality menu: one entry per video height (the audio rides along), highest first.
  const videoTracks = () => {
    const byHeight = new Map<number, Track>();
    for (const t of player.getVariantTracks()) {
      const h = t.height ?? 0;
      const seen = byHeight.get(h);
      if (!seen || t.bandwidth > seen.bandwidth) byHeight.set(h, t);
    }
    return [...byHeight.values()].sort((a, b) => (b.height ?? 0) - (a.height ?? 0));
  };
  for (const t of videoTracks()) {
    quality.append(el('option', { value: String(t.height), text: `${t.height}p · ${mbps(t.videoBandwidth ?? t.bandwidth)}` }));
  }
  quality.addEventListener('change', () => {
    if (quality.value === 'auto') {
      player.configure({ abr: { enabled: true } });
    } else {
      const t = videoTracks().find((x) => String(x.height) === quality.value);
      if (!t) return;
      player.configure({ abr: { enabled: false } });
      player.selectVariantTrack(t, true);
    }
    update();
  });

  const update = () => {
    const active = player.getVariantTracks().find((t) => t.active);
    if (active) {
      current.textContent = `Playing ${active.height}p · ${mbps(active.bandwidth)}${quality.value === 'auto' ? ' (auto)' : ''}`;
      current.dataset.height = String(active.height);
    }
    const est = player.getStats().estimatedBandwidth;
    bandwidth.textContent = Number.isFinite(est) && est > 0 ? `Bandwidth ${mbps(est)}` : 'Bandwidth –';
  };
  player.addEventListener('variantchanged', update);
  player.addEventListener('adaptation', update);
  setInterval(update, 1000);
  update();

  // Seek bar with buffered ranges drawn behind the thumb.
  const drawSeek = () => {
    const d = Number.isFinite(video.duration) ? video.duration : 0;
    seek.max = String(d);
    if (document.activeElement !== seek) seek.value = String(video.currentTime);
    time.textContent = `${clock(video.currentTime)} / ${clock(d)}`;
    const stops: string[] = [];
    for (let i = 0; i < video.buffered.length && d > 0; i++) {
      const a = (video.buffered.start(i) / d) * 100;
      const b = (video.buffered.end(i) / d) * 100;
      stops.push(`transparent ${a}%`, `var(--buffered) ${a}%`, `var(--buffered) ${b}%`, `transparent ${b}%`);
    }
    seek.style.setProperty('--ranges', stops.length ? `linear-gradient(to right, ${stops.join(', ')})` : 'none');
  };
  for (const ev of ['timeupdate', 'progress', 'durationchange', 'seeked']) video.addEventListener(ev, drawSeek);
  seek.addEventListener('input', () => {
    video.currentTime = Number(seek.value);
  });
  // Thumbnails on the seek bar: the cue under the pointer, cut out of its sprite sheet.
  if (asset.playback.thumbnails) {
    const cues = await loadThumbnails(abs(asset.playback.thumbnails));
    seek.addEventListener('mousemove', (e) => {
      const d = Number(seek.max);
      const rect = seek.getBoundingClientRect();
      const t = Math.max(0, Math.min(d, ((e.clientX - rect.left) / rect.width) * d));
      const cue = cues.find((c) => t >= c.start && t < c.end) ?? cues.at(-1);
      if (!cue || !d) return;
      preview.hidden = false;
      preview.dataset.time = t.toFixed(1);
      Object.assign(preview.style, {
        width: `${cue.w}px`,
        height: `${cue.h}px`,
        backgroundImage: `url("${cue.url}")`,
        backgroundPosition: `-${cue.x}px -${cue.y}px`,
        left: `${Math.max(0, Math.min(frame.clientWidth - cue.w, e.clientX - frame.getBoundingClientRect().left - cue.w / 2))}px`,
      });
    });
    seek.addEventListener('mouseleave', () => {
      preview.hidden = true;
    });
  }

  const toggle = () => (video.paused ? void video.play().catch(() => {}) : video.pause());
  const syncPlay = () => {
    playBtn.replaceChildren(icon(video.paused ? ICONS.play : ICONS.pause));
    playBtn.setAttribute('aria-label', video.paused ? 'Play' : 'Pause');
  };
  video.addEventListener('play', syncPlay);
  video.addEventListener('pause', syncPlay);
  video.addEventListener('click', toggle);
  playBtn.addEventListener('click', toggle);
  const mute = () => {
    video.muted = !video.muted;
    muteBtn.replaceChildren(icon(video.muted ? ICONS.muted : ICONS.volume));
    muteBtn.setAttribute('aria-label', video.muted ? 'Unmute' : 'Mute');
    muteBtn.setAttribute('aria-pressed', String(video.muted));
  };
  muteBtn.addEventListener('click', mute);
  const fullscreen = () => {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void frame.requestFullscreen?.();
  };
  fsBtn.addEventListener('click', fullscreen);
  document.addEventListener('keydown', (e) => {
    const target = e.target as HTMLElement;
    if (e.ctrlKey || e.metaKey || e.altKey || ['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) return;
    if (e.key === ' ' && target.tagName === 'BUTTON') return; // the button's own activation
    const keys: Record<string, () => void> = {
      ' ': toggle,
      k: toggle,
      ArrowLeft: () => {
        video.currentTime = Math.max(0, video.currentTime - 5);
      },
      ArrowRight: () => {
        video.currentTime = Math.min(video.duration || 0, video.currentTime + 5);
      },
      f: fullscreen,
      m: mute,
    };
    const fn = keys[e.key];
    if (fn) {
      e.preventDefault();
      fn();
    }
  });
  drawSeek();
  playBtn.disabled = false;
}

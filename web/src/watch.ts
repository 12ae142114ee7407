// The watch page: Shaka Player on the asset's DASH manifest (HLS while it is still encoding), with our own
// controls: play/pause, seek bar showing buffered ranges, time, mute, captions, audio language, automatic or manual
// quality, the rendition playing and the estimated bandwidth, fullscreen, and keys (space, ←/→, f, m, c). An
// audio-only asset (podcast, music) gets the same bar under its cover art. Embed snippet and URLs below. A live
// event (status `live`) has a LIVE badge, a "go live" button (to the live edge) and a seek bar over Shaka's seek
// range (the DVR window); when the event ends the same page goes on as the archive.
import shaka from 'shaka-player/dist/shaka-player.compiled.js';
import { type Asset, api, clock, el } from './api.ts';
import { loadThumbnails } from './thumbnails.ts';
import { audioMenu, captionsMenu, languageName } from './tracks.ts';

type Track = shaka.extern.Track;

/** A WebVTT file converted from one of the source's text subtitle tracks, or added as a sidecar file. */
interface CaptionJson {
  id: string;
  language: string;
  label: string;
  kind: 'subtitles' | 'captions';
  /** The whole WebVTT file; null until the asset is ready. */
  url: string | null;
}
/** The fields read defensively (absent from an older server's JSON; `mediaType` null until probed). */
type AssetX = Omit<Asset, 'mediaType' | 'captions' | 'notes'> & {
  mediaType?: 'video' | 'audio' | null;
  captions?: CaptionJson[];
  notes?: string[];
};

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
  captions:
    'M19 4H5a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2V6a2 2 0 0 0-2-2zm-8 7H9.5v-.5h-2v3h2V13H11v1a1 1 0 0 1-1 1H7a1 1 0 0 1-1-1v-4a1 1 0 0 1 1-1h3a1 1 0 0 1 1 1zm7 0h-1.5v-.5h-2v3h2V13H18v1a1 1 0 0 1-1 1h-3a1 1 0 0 1-1-1v-4a1 1 0 0 1 1-1h3a1 1 0 0 1 1 1z',
  headphones: 'M12 3a9 9 0 0 0-9 9v7a2 2 0 0 0 2 2h2v-8H5v-1a7 7 0 0 1 14 0v1h-2v8h2a2 2 0 0 0 2-2v-7a9 9 0 0 0-9-9z',
};

export function mbps(bits: number): string {
  return `${(bits / 1e6).toFixed(bits >= 1e7 ? 0 : 1)} Mb/s`;
}
/** Audio bitrates read better in kb/s. */
function rate(bits: number): string {
  return bits >= 1e6 ? mbps(bits) : `${Math.round(bits / 1e3)} kb/s`;
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

/** The share section: embed code, stream URLs, poster, downloads and caption files. */
function shareSection(asset: AssetX, abs: (u: string | null) => string): HTMLElement {
  const origin = location.origin;
  const embed = `<iframe src="${origin}/watch/${asset.id}?embed" width="960" height="540" allow="fullscreen" style="border:0" title="${asset.title.replace(/"/g, '&quot;')}"></iframe>`;
  const downloads = asset.playback.downloads;
  const links = (label: string, items: { href: string; text: string; lang?: string }[]) =>
    el(
      'p',
      { class: 'downloads' },
      label,
      ...items.flatMap((d, i) => [
        i ? ' · ' : '',
        el('a', { href: d.href, download: '', text: d.text, ...(d.lang ? { hreflang: d.lang } : {}) }),
      ]),
    );
  const captions = (asset.captions ?? []).filter((c): c is CaptionJson & { url: string } => !!c.url);
  return el(
    'section',
    { class: 'share', 'aria-label': 'Share' },
    el('h2', { text: 'Share' }),
    copyRow('Embed code', embed),
    copyRow('HLS URL', abs(asset.playback.hls)),
    ...(asset.playback.dash ? [copyRow('DASH URL', abs(asset.playback.dash))] : []),
    ...(asset.playback.hlsByteRange ? [copyRow('HLS (byte ranges)', abs(asset.playback.hlsByteRange))] : []),
    ...(asset.playback.dashSegmentBase ? [copyRow('DASH (SegmentBase)', abs(asset.playback.dashSegmentBase))] : []),
    ...(asset.playback.poster ? [copyRow('Poster URL', abs(asset.playback.poster))] : []),
    ...(downloads.length
      ? [
          links(
            downloads.every((d) => d.height) ? 'Download MP4: ' : 'Download: ',
            downloads.map((d) => ({
              href: d.url,
              // No height: the audio-only download of an audio asset.
              text: d.height ? `${d.height}p (${mbps(d.bitrate)})` : 'Audio (M4A)',
            })),
          ),
        ]
      : []),
    ...(captions.length
      ? [
          links(
            'Captions (WebVTT): ',
            captions.map((c) => ({ href: c.url, text: c.label || languageName(c.language), lang: c.language })),
          ),
        ]
      : []),
  );
}

/**
 * A Shaka player attached to `media`, drawing text inside `frame`, its errors put in `message`; null (said in
 * `message`) where the browser has no Media Source Extensions. The caller loads the manifest.
 */
export async function createPlayer(
  frame: HTMLElement,
  media: HTMLMediaElement,
  message: HTMLElement,
): Promise<shaka.Player | null> {
  shaka.polyfill.installAll();
  if (!shaka.Player.isBrowserSupported()) {
    message.textContent = 'This browser cannot play adaptive streams (no Media Source Extensions).';
    return null;
  }
  const player = new shaka.Player();
  // Captions are drawn by Shaka's UITextDisplayer as DOM inside the player frame (not the <video>'s own track
  // rendering), so they stay over the picture when the frame, rather than the <video>, is made fullscreen.
  player.setVideoContainer(frame);
  await player.attach(media);
  player.addEventListener('error', (e) => {
    const detail = (e as unknown as { detail: shaka.util.Error }).detail;
    message.textContent = `Playback error ${detail.code}`;
  });
  return player;
}

/** How far behind the live edge still counts as live (about a segment and a half). */
const LIVE_EDGE_SLACK = 3;

export async function renderWatch(app: HTMLElement, id: string): Promise<void> {
  let asset: AssetX;
  try {
    asset = await api.get(id);
  } catch (err) {
    app.replaceChildren(el('h1', { text: 'Video not found' }), el('p', { text: (err as Error).message }));
    return;
  }
  // Audio only (podcast, music): said so by the API, or known from the renditions (a server without `mediaType`).
  const audioOnly =
    asset.mediaType === 'audio' || (asset.renditions.length > 0 && !asset.renditions.some((r) => r.type === 'video'));
  // A live event has no poster yet (it is made from the archive when the event ends).
  const poster = asset.status === 'live' ? null : asset.playback.poster;
  let media: HTMLMediaElement;
  let picture: HTMLElement;
  if (audioOnly) {
    media = el('audio', { id: 'audio', preload: 'auto', 'aria-label': asset.title });
    picture = poster
      ? el('img', { class: 'cover', src: poster, alt: `Cover art of ${asset.title}` })
      : el('div', { class: 'cover', role: 'img', 'aria-label': asset.title });
  } else {
    const video = el('video', { id: 'video', playsinline: '', preload: 'auto', 'aria-label': asset.title });
    if (poster) video.poster = poster;
    media = picture = video;
  }
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
  // Live: a badge by the title, and a button back to the live edge (lit while playing at it).
  const live = asset.status === 'live';
  const liveBadge = el('span', { class: 'badge live', text: 'LIVE' });
  const goLive = el(
    'button',
    { type: 'button', class: 'golive', 'aria-label': 'Go to the live edge', disabled: '' },
    'Go live',
  );
  const current = el('span', { class: 'current', 'aria-live': 'polite' });
  const bandwidth = el('span', { class: 'bandwidth' });
  const message = el('p', { class: 'message', role: 'alert' });
  // Audio only: no quality to pick (one audio ladder, Shaka's to adapt) and nothing to fullscreen.
  const videoOnly = audioOnly ? [] : [quality, fsBtn];
  const liveOnly = live ? [goLive] : [];
  const controls = el('div', { class: 'controls' }, playBtn, seek, time, ...liveOnly, muteBtn, ...videoOnly);
  const preview = el('div', { class: 'preview', hidden: '', 'aria-hidden': 'true' });
  const frame = el(
    'div',
    { class: audioOnly ? 'player audio' : 'player', tabindex: '-1' },
    picture,
    ...(audioOnly ? [media] : [preview]),
    controls,
  );
  const origin = location.origin;
  const abs = (u: string | null) => (u ? new URL(u, origin).href : '');
  const notes = asset.notes ?? [];
  app.replaceChildren(
    live ? el('h1', {}, asset.title, ' ', liveBadge) : el('h1', { text: asset.title }),
    ...(notes.length
      ? [el('ul', { class: 'notes', 'aria-label': 'Notes' }, ...notes.map((n) => el('li', { text: n })))]
      : []),
    frame,
    el('p', { class: 'stats' }, current, ' · ', bandwidth),
    message,
    shareSection(asset, abs),
  );

  if (!asset.playable) {
    message.textContent = asset.status === 'failed' ? `This video failed: ${asset.error?.message}` : 'Not playable yet…';
    return;
  }
  const player = await createPlayer(frame, media, message);
  if (!player) return;
  (window as unknown as { smoothcastPlayer: shaka.Player }).smoothcastPlayer = player;
  const captions = captionsMenu(player, icon(ICONS.captions));
  const audio = audioMenu(player, icon(ICONS.headphones));
  muteBtn.after(captions.control, audio.control);
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
  audio.prefer();
  // A live event's MPD is served from its first whole segment (about 2 s after its first media): a few tries.
  for (let attempt = 0; ; attempt++) {
    try {
      await player.load(abs(src));
      break;
    } catch (err) {
      if (live && attempt < 5) {
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      message.textContent = `Could not load the stream: ${(err as { code?: number }).code ?? err}`;
      return;
    }
  }
  // A delivery whose manifest carries no text tracks (one that cannot, or an older revision): the WebVTT files.
  if (!player.getTextTracks().length) {
    for (const c of asset.captions ?? []) {
      if (!c.url) continue;
      const kind = c.kind === 'captions' ? 'caption' : 'subtitle';
      await player.addTextTrackAsync(abs(c.url), c.language, kind, 'text/vtt', undefined, c.label).catch(() => {});
    }
  }
  captions.init();
  audio.init();

  // Quality menu: one entry per video height (the audio rides along), highest first; only variants carrying the
  // audio playing, so picking a quality never changes the language.
  const videoTracks = () => {
    const variants = player.getVariantTracks();
    const playing = variants.find((t) => t.active);
    const sameAudio = (t: Track) => !playing || (t.language === playing.language && t.label === playing.label);
    const byHeight = new Map<number, Track>();
    for (const t of variants.filter(sameAudio)) {
      const h = t.height ?? 0;
      const seen = byHeight.get(h);
      if (!seen || t.bandwidth > seen.bandwidth) byHeight.set(h, t);
    }
    return [...byHeight.values()].sort((a, b) => (b.height ?? 0) - (a.height ?? 0));
  };
  if (!audioOnly) {
    for (const t of videoTracks()) {
      quality.append(el('option', { value: String(t.height), text: `${t.height}p · ${mbps(t.videoBandwidth ?? t.bandwidth)}` }));
    }
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
    if (active && active.height) {
      current.textContent = `Playing ${active.height}p · ${mbps(active.bandwidth)}${quality.value === 'auto' ? ' (auto)' : ''}`;
      current.dataset.height = String(active.height);
    } else if (active) {
      current.textContent = `Playing audio · ${rate(active.bandwidth)}`;
    }
    const est = player.getStats().estimatedBandwidth;
    bandwidth.textContent = Number.isFinite(est) && est > 0 ? `Bandwidth ${mbps(est)}` : 'Bandwidth –';
  };
  player.addEventListener('variantchanged', update);
  player.addEventListener('adaptation', update);
  setInterval(update, 1000);
  update();

  // Seek bar with buffered ranges drawn behind the thumb. Live: it spans Shaka's seek range (the DVR window, which
  // moves with the edge) and the time says how far behind live the picture is.
  const range = () => {
    if (player.isLive()) return player.seekRange();
    return { start: 0, end: Number.isFinite(media.duration) ? media.duration : 0 };
  };
  const drawSeek = () => {
    const { start: lo, end: hi } = range();
    seek.min = String(lo);
    seek.max = String(hi);
    if (document.activeElement !== seek) seek.value = String(media.currentTime);
    if (player.isLive()) {
      const behind = Math.max(0, hi - media.currentTime);
      const atEdge = behind < LIVE_EDGE_SLACK;
      time.textContent = atEdge ? 'live' : `−${clock(behind)}`;
      seek.setAttribute('aria-valuetext', atEdge ? 'at the live edge' : `${clock(behind)} behind live`);
      goLive.disabled = false;
      goLive.classList.toggle('at-edge', atEdge);
      goLive.textContent = atEdge ? 'LIVE' : 'Go live';
    } else {
      time.textContent = `${clock(media.currentTime)} / ${clock(hi)}`;
      seek.removeAttribute('aria-valuetext');
    }
    const span = hi - lo;
    const pct = (t: number) => Math.max(0, Math.min(100, ((t - lo) / span) * 100));
    const stops: string[] = [];
    for (let i = 0; i < media.buffered.length && span > 0; i++) {
      const a = pct(media.buffered.start(i));
      const b = pct(media.buffered.end(i));
      stops.push(`transparent ${a}%`, `var(--buffered) ${a}%`, `var(--buffered) ${b}%`, `transparent ${b}%`);
    }
    seek.style.setProperty('--ranges', stops.length ? `linear-gradient(to right, ${stops.join(', ')})` : 'none');
  };
  for (const ev of ['timeupdate', 'progress', 'durationchange', 'seeked']) media.addEventListener(ev, drawSeek);
  if (live) {
    // The window moves on while paused too.
    setInterval(drawSeek, 1000);
    goLive.addEventListener('click', () => {
      player.goToLive();
      void media.play().catch(() => {});
    });
    // When the event ends the page goes on as the archive (Shaka turns the static manifest into VOD itself).
    api.follow(asset.id, (a) => {
      if (!a || a.status === 'live') return;
      liveBadge.remove();
      goLive.remove();
    });
  }
  seek.addEventListener('input', () => {
    media.currentTime = Number(seek.value);
  });
  // Thumbnails on the seek bar: the cue under the pointer, cut out of its sprite sheet.
  if (asset.playback.thumbnails && !audioOnly) {
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

  const toggle = () => (media.paused ? void media.play().catch(() => {}) : media.pause());
  const syncPlay = () => {
    playBtn.replaceChildren(icon(media.paused ? ICONS.play : ICONS.pause));
    playBtn.setAttribute('aria-label', media.paused ? 'Play' : 'Pause');
  };
  media.addEventListener('play', syncPlay);
  media.addEventListener('pause', syncPlay);
  picture.addEventListener('click', toggle);
  playBtn.addEventListener('click', toggle);
  const mute = () => {
    media.muted = !media.muted;
    muteBtn.replaceChildren(icon(media.muted ? ICONS.muted : ICONS.volume));
    muteBtn.setAttribute('aria-label', media.muted ? 'Unmute' : 'Mute');
    muteBtn.setAttribute('aria-pressed', String(media.muted));
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
        media.currentTime = Math.max(range().start, media.currentTime - 5);
      },
      ArrowRight: () => {
        media.currentTime = Math.min(range().end, media.currentTime + 5);
      },
      m: mute,
      c: captions.toggle,
      ...(audioOnly ? {} : { f: fullscreen }),
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

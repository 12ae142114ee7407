// The watch page: Shaka Player on the asset's DASH manifest (HLS while it is still encoding), with our own
// controls: play/pause, seek bar showing buffered ranges, time, mute, captions, audio language, automatic or manual
// quality, the rendition playing and the estimated bandwidth, fullscreen, and keys (space, ←/→, f, m, c). An
// audio-only asset (podcast, music) gets the same bar under its cover art. Embed snippet and URLs below. A live
// event (status `live`) has a LIVE badge, a "go live" button (to the live edge) and a seek bar over Shaka's seek
// range (the DVR window); when the event ends the same page goes on as the archive.
//
// Access: a visitor gets the video from /v/<id>/player.json (with the page's `?token=` of a signed link); a signed-in
// user from the API, and for a signed video a playback token of their own (POST …/playback-tokens). Encrypted
// videos (cenc, cbcs) play through Shaka's EME with the ClearKey licence URL the API gives; AES-128 HLS through
// Shaka's HLS. A refusal (viewer limit, a missing, expired or wrong token) is said in plain words. Editors change the
// playback policy, encryption and viewer limit here, see the current viewers, and copy signed links.
import shaka from 'shaka-player/dist/shaka-player.compiled.js';
import {
  ApiError,
  type Asset,
  api,
  can,
  clock,
  type Encryption,
  el,
  type Me,
  type PlaybackGrant,
  type PlaybackPolicy,
  playbackErrorText,
  readableError,
  signInHref,
} from './api.ts';
import { installSmoothAbr, type SmoothAbr } from './abr/smooth-abr.ts';
import { accessBadges, viewersText } from './library.ts';
import { qoeSection } from './qoe.ts';
import { loadThumbnails } from './thumbnails.ts';
import { audioMenu, captionsMenu, languageName } from './tracks.ts';
import { copyText, field, notes, uid } from './ui.ts';

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
function shareSection(
  asset: AssetX,
  abs: (u: string | null) => string,
  token: string | null,
  expiresAt: string | null,
): HTMLElement {
  const origin = location.origin;
  // A signed video's embed needs a token: the one this page plays with (a longer-lived one: "Signed link").
  const signed = asset.playbackPolicy === 'signed' && token;
  const src = `${origin}/watch/${asset.id}?embed${signed ? `&amp;token=${encodeURIComponent(token)}` : ''}`;
  const embed = `<iframe src="${src}" width="960" height="540" allow="fullscreen; encrypted-media" style="border:0" title="${asset.title.replace(/"/g, '&quot;')}"></iframe>`;
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
    ...(signed
      ? [
          el('p', {
            class: 'hint',
            text: `These carry a playback token${expiresAt ? ` that works until ${new Date(expiresAt).toLocaleString()}` : ''}.`,
          }),
        ]
      : []),
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
    message.textContent = refusalText(detail) ?? `Playback error ${detail.code}`;
  });
  return player;
}

/** The HTTP status and body of a failed request inside a Shaka error (1001 BAD_HTTP_STATUS, maybe wrapped). */
function httpFailure(err: unknown, depth = 0): { status: number; body: string } | null {
  const e = err as { code?: number; data?: unknown[] } | null;
  if (!e || typeof e !== 'object' || depth > 3) return null;
  if (e.code === shaka.util.Error.Code.BAD_HTTP_STATUS && Array.isArray(e.data)) {
    return { status: Number(e.data[1]), body: typeof e.data[2] === 'string' ? e.data[2] : '' };
  }
  // A licence request that failed (6007) carries the network error as its data.
  for (const d of Array.isArray(e.data) ? e.data : []) {
    const inner = httpFailure(d, depth + 1);
    if (inner) return inner;
  }
  return null;
}

/** A player error's code (Shaka's number), or what else went wrong. */
export function errorCode(err: unknown): string {
  if (err instanceof shaka.util.Error) return String(err.code);
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** A refused manifest, segment or licence (viewer limit, playback token) in plain words; null for other errors. */
export function refusalText(err: unknown): string | null {
  if (err instanceof ApiError) return playbackErrorText(err.code, err.retryAfter);
  const http = httpFailure(err);
  if (!http) return null;
  let code = '';
  try {
    code = (JSON.parse(http.body) as { error?: { code?: string } }).error?.code ?? '';
  } catch {
    // not the API's JSON
  }
  const text = code ? playbackErrorText(code) : null;
  if (text) return text;
  if (http.status === 429) return playbackErrorText('VIEWER_LIMIT_REACHED');
  if (http.status === 403) return 'This video cannot be played from here: the link is missing, expired or not valid.';
  if (http.status === 401) return 'Sign in to play this video.';
  return null;
}

/** `url` with `?token=` added (same-origin media URLs only, and only when it has none). */
export function withToken(url: string, token: string | null): string {
  if (!token) return url;
  const u = new URL(url, location.origin);
  if (u.origin !== location.origin || u.searchParams.has('token')) return url;
  u.searchParams.set('token', token);
  return u.href;
}

/** Every playback URL of the asset carrying the token (a grant's URLs where it has them). */
function tokenized(a: AssetX, token: string | null, grant?: PlaybackGrant): AssetX {
  if (!token) return a;
  const t = (u: string | null | undefined) => (u ? withToken(u, token) : null);
  const g = grant?.playback;
  const drm = g?.drm ?? a.playback.drm ?? null;
  return {
    ...a,
    playback: {
      ...a.playback,
      hls: t(g?.hls ?? a.playback.hls),
      dash: t(g?.dash ?? a.playback.dash),
      smooth: t(g?.smooth ?? a.playback.smooth),
      poster: t(g?.poster ?? a.playback.poster),
      thumbnails: t(g?.thumbnails ?? a.playback.thumbnails),
      hlsByteRange: t(a.playback.hlsByteRange),
      dashSegmentBase: t(a.playback.dashSegmentBase),
      downloads: (g?.downloads ?? a.playback.downloads).map((d) => ({ ...d, url: withToken(d.url, token) })),
      drm: drm && {
        clearkey: { licenseUrl: withToken(drm.clearkey.licenseUrl, token) },
        ...(drm.widevine ? { widevine: drm.widevine } : {}),
        ...(drm.playready ? { playready: drm.playready } : {}),
      },
    },
    captions: (a.captions ?? []).map((c) => ({ ...c, url: t(c.url) })),
  };
}

interface Loaded {
  /** What plays, its URLs carrying `token` when there is one. */
  asset: AssetX;
  token: string | null;
  expiresAt: string | null;
  /** The API's view of the asset (a signed-in user who may read it): settings, viewers. */
  managed: AssetX | null;
}

/**
 * The asset as this visitor may play it: with the page's `?token=` from player.json; signed in, from the API (and a
 * playback token of their own for a signed video); otherwise player.json (public videos only).
 */
async function loadAsset(id: string, m: Me, pageToken: string | null): Promise<Loaded> {
  let managed: AssetX | null = null;
  if (can(m, 'assets:read')) {
    try {
      managed = await api.get(id);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) throw err;
      managed = null; // not allowed to read it: play it as a visitor
    }
  }
  if (pageToken) {
    const a = await api.player(id, pageToken);
    return { asset: tokenized(a, pageToken), token: pageToken, expiresAt: null, managed };
  }
  if (managed) {
    if (managed.playbackPolicy !== 'signed' || !managed.playable) {
      return { asset: managed, token: null, expiresAt: null, managed };
    }
    if (can(m, 'playback:sign')) {
      const grant = await api.playbackToken(id);
      return { asset: tokenized(managed, grant.token, grant), token: grant.token, expiresAt: grant.expiresAt, managed };
    }
  }
  return { asset: await api.player(id), token: null, expiresAt: null, managed };
}

const ENCRYPTION_TEXT: Record<Encryption, string> = {
  none: 'None',
  'aes-128': 'AES-128 (HLS, whole segments)',
  cbcs: 'CBCS (common encryption; ClearKey here, FairPlay/Widevine-ready)',
  cenc: 'CENC (common encryption; ClearKey here, Widevine/PlayReady-ready)',
};

/** Editors: playback policy, encryption and viewer limit (PATCH /api/assets/:id), and the current viewers. */
function accessSection(
  a: AssetX,
  onSaved: (a: AssetX, reload: boolean) => void,
  /** Before a change of policy or encryption: the player stops (its URLs are about to stop working). */
  beforeReload: () => Promise<void>,
): { section: HTMLElement; viewers(a: AssetX): void } {
  const name = uid('policy');
  const policy = (value: PlaybackPolicy, text: string, hint: string) => {
    const input = el('input', { type: 'radio', name, value });
    input.checked = (a.playbackPolicy ?? 'public') === value;
    return el('label', { class: 'choice' }, input, ` ${text} `, el('span', { class: 'hint', text: hint }));
  };
  const encryption = el(
    'select',
    { name: 'encryption' },
    ...(Object.entries(ENCRYPTION_TEXT) as [Encryption, string][]).map(([v, t]) => el('option', { value: v, text: t })),
  );
  encryption.value = a.encryption ?? 'none';
  const limit = el('input', { type: 'number', name: 'maxViewers', min: '1', step: '1', inputmode: 'numeric' });
  limit.placeholder = 'no limit';
  limit.value = a.maxViewers ? String(a.maxViewers) : '';
  const save = el('button', { type: 'submit', class: 'primary' }, 'Save');
  const n = notes();
  const watching = el('p', { class: 'viewers', 'aria-live': 'off', text: viewersText(a) });
  const form = el(
    'form',
    { class: 'access-form' },
    el(
      'fieldset',
      { class: 'field' },
      el('legend', { text: 'Playback' }),
      policy('public', 'Public', '— anyone with the page or the stream URLs'),
      policy('signed', 'Signed', '— only signed links (tokens) play it'),
    ),
    field('Encryption', encryption, 'applied as it is served; nothing is re-encoded'),
    field('Viewer limit', limit, 'at most this many watch at once; empty: no limit'),
    el('div', { class: 'buttons' }, save),
    n.status,
    n.alert,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    n.clear();
    const chosen = (form.querySelector(`input[name="${name}"]:checked`) as HTMLInputElement | null)?.value as
      | PlaybackPolicy
      | undefined;
    const max = limit.value.trim() ? Number(limit.value) : null;
    const patch: { playbackPolicy?: PlaybackPolicy; encryption?: Encryption; maxViewers?: number | null } = {};
    if (chosen && chosen !== (a.playbackPolicy ?? 'public')) patch.playbackPolicy = chosen;
    if (encryption.value !== (a.encryption ?? 'none')) patch.encryption = encryption.value as Encryption;
    if (max !== (a.maxViewers ?? null)) patch.maxViewers = max;
    if (!Object.keys(patch).length) {
      n.status.textContent = 'Nothing changed.';
      return;
    }
    save.disabled = true;
    const reload = patch.playbackPolicy !== undefined || patch.encryption !== undefined;
    (reload ? beforeReload() : Promise.resolve())
      .then(() => api.update(a.id, patch))
      .then((next) => {
        a = next;
        n.status.textContent = reload ? 'Saved; loading it again…' : 'Saved.';
        onSaved(next, reload);
      })
      .catch((err) => {
        n.alert.textContent = `Could not save: ${readableError(err)}${reload ? ' (reload the page to play again)' : ''}`;
      })
      .finally(() => {
        save.disabled = false;
      });
  });
  return {
    section: el(
      'section',
      { class: 'access panel', 'aria-labelledby': 'access-h' },
      el('h2', { id: 'access-h', text: 'Access' }),
      watching,
      form,
    ),
    viewers(next) {
      watching.textContent = viewersText(next);
    },
  };
}

const LINK_LIFE: [string, number][] = [
  ['1 hour', 3600],
  ['1 day', 86400],
  ['7 days', 7 * 86400],
];

/** A signed link to the watch page (and its embed code), made on request and copied. */
function signedLinkSection(a: AssetX): HTMLElement {
  const life = el('select', {}, ...LINK_LIFE.map(([t, s]) => el('option', { value: String(s), text: t })));
  life.value = '86400';
  const make = el('button', { type: 'button', class: 'primary sign-link' }, 'Copy signed link');
  const link = el('input', { type: 'text', readonly: '', 'data-field': 'signed-link', 'aria-label': 'Signed link' });
  const embed = el('input', { type: 'text', readonly: '', 'data-field': 'signed-embed', 'aria-label': 'Signed embed code' });
  const copyEmbed = el('button', { type: 'button', 'aria-label': 'Copy signed embed code' }, 'Copy');
  copyEmbed.addEventListener('click', () => copyText(embed.value, copyEmbed, embed));
  const out = el(
    'div',
    { class: 'signed-out', hidden: '' },
    el('div', { class: 'copy' }, el('span', { class: 'label', text: 'Link' }), link),
    el('div', { class: 'copy' }, el('span', { class: 'label', text: 'Embed code' }), embed, copyEmbed),
  );
  const n = notes();
  make.addEventListener('click', () => {
    n.clear();
    make.disabled = true;
    api
      .playbackToken(a.id, { expiresInSeconds: Number(life.value) })
      .then((g) => {
        const url = `${location.origin}/watch/${a.id}?token=${encodeURIComponent(g.token)}`;
        link.value = url;
        embed.value = `<iframe src="${location.origin}/watch/${a.id}?embed&amp;token=${encodeURIComponent(g.token)}" width="960" height="540" allow="fullscreen; encrypted-media" style="border:0" title="${a.title.replace(/"/g, '&quot;')}"></iframe>`;
        out.hidden = false;
        n.status.textContent = `Signed link made; it works until ${new Date(g.expiresAt).toLocaleString()}.`;
        copyText(url, make, link);
      })
      .catch((err) => {
        n.alert.textContent = `Could not make a signed link: ${readableError(err)}`;
      })
      .finally(() => {
        make.disabled = false;
      });
  });
  return el(
    'section',
    { class: 'signed-link panel', 'aria-labelledby': 'signed-h' },
    el('h2', { id: 'signed-h', text: 'Signed link' }),
    el('p', { class: 'hint', text: 'Anyone with the link can watch this video until it expires.' }),
    el('div', { class: 'row' }, field('Works for', life), make),
    out,
    n.status,
    n.alert,
  );
}


interface OpenStream {
  player: shaka.Player;
  /** SmoothAbr (null with ?abr=shaka). */
  abr: { current(): SmoothAbr | null } | null;
}

/**
 * A player for `asset` on `media`, configured (CMCD, adaptation, DRM, the remembered audio language) and loaded
 * (the caption files added when its manifest has no text tracks); null with the reason said in `message`.
 */
async function openStream(
  frame: HTMLElement,
  media: HTMLMediaElement,
  message: HTMLElement,
  asset: AssetX,
  live: boolean,
): Promise<OpenStream | null> {
  const abs = (u: string) => new URL(u, location.origin).href;
  const player = await createPlayer(frame, media, message);
  if (!player) return null;
  // CMCD (CTA-5004) on every request, as headers (a query string would make each segment URL unique to caches):
  // the origin keeps per-session QoE from them (sessions, stalls, startup, bitrate played).
  player.configure({ cmcd: { enabled: true, useHeaders: true, contentId: asset.id } });
  // Shaka 5 never sets CMCD's `bs` (buffer starvation): the first segment request after a stall gets it here
  // (request filters run after Shaka's CMCD is applied). A wait while seeking is not a stall.
  let starved = false;
  media.addEventListener('waiting', () => {
    if (media.currentTime > 0 && !media.seeking) starved = true;
  });
  player.getNetworkingEngine()?.registerRequestFilter((type, request) => {
    if (!starved || type !== shaka.net.NetworkingEngine.RequestType.SEGMENT) return;
    starved = false;
    const name = Object.keys(request.headers).find((k) => k.toLowerCase() === 'cmcd-status') ?? 'CMCD-Status';
    const keys = (request.headers[name] ?? '').split(',').filter(Boolean);
    request.headers[name] = [...keys, 'bs'].sort().join(',');
  });
  // Adaptation: SmoothAbr (web/src/abr) unless ?abr=shaka asks for Shaka's own, for comparison.
  const abr = new URLSearchParams(location.search).get('abr') === 'shaka' ? null : installSmoothAbr(player);
  // A signed video: only the manifest URL carries the token; the origin writes it into every URL in the manifest
  // that needs it (playlists, keys, licences; segments of a clear asset), with the viewer session's id.
  // Encrypted (cenc, cbcs): the keys come from the platform's ClearKey licence server (the URL carries any token).
  const drm = asset.playback.drm;
  if (drm) {
    const clearkey = abs(drm.clearkey.licenseUrl);
    const servers: Record<string, string> = { 'org.w3.clearkey': clearkey };
    if (drm.widevine) servers['com.widevine.alpha'] = drm.widevine.licenseUrl;
    if (drm.playready) servers['com.microsoft.playready'] = drm.playready.licenseUrl;
    player.configure({ drm: { servers } });
    // Shaka keeps a ClearKey licence URL found in the manifest over the configured one, and resolves a relative one
    // (dashif:Laurl) against the page rather than the manifest: our licence requests go to the API's URL. The
    // request is the CDM's JSON ({"kids":[…]}), sent as such.
    player.getNetworkingEngine()?.registerRequestFilter((type, request) => {
      if (type !== shaka.net.NetworkingEngine.RequestType.LICENSE) return;
      const ours = request.uris.some((u) => new URL(u, location.href).pathname.endsWith('/clearkey'));
      if (!ours) return;
      request.uris = [clearkey];
      request.headers['Content-Type'] = 'application/json';
    });
  }
  // ?format= picks one delivery (hls, dash, hls-byterange, dash-segmentbase); default: DASH once complete, else HLS.
  const formats: Record<string, string | null> = {
    hls: asset.playback.hls,
    dash: asset.playback.dash,
    'hls-byterange': asset.playback.hlsByteRange,
    'dash-segmentbase': asset.playback.dashSegmentBase,
  };
  const format = new URLSearchParams(location.search).get('format');
  // AES-128 is HLS's own encryption (DASH has none like it): HLS first.
  const preferred = asset.encryption === 'aes-128' ? (asset.playback.hls ?? asset.playback.dash) : (asset.playback.dash ?? asset.playback.hls);
  const src = format ? formats[format] : preferred;
  if (!src) {
    message.textContent = `No ${format} stream for this video (yet).`;
    return null;
  }
  // The remembered audio language, before load picks one.
  audioMenu(player, document.createTextNode('')).prefer();
  // A live event's MPD is served from its first whole segment (about 2 s after its first media): a few tries.
  for (let attempt = 0; ; attempt++) {
    try {
      await player.load(abs(src));
      break;
    } catch (err) {
      const refused = refusalText(err);
      if (live && attempt < 5 && !refused) {
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      message.textContent = refused ?? `Could not load the stream: ${errorCode(err)}`;
      const status = httpFailure(err)?.status;
      if (status) message.dataset.status = String(status);
      return null;
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
  return { player, abr };
}

/** How far behind the live edge still counts as live (about a segment and a half). */
const LIVE_EDGE_SLACK = 3;

export interface WatchOptions {
  /** A player already loaded (and playing) for this asset: the previous item of a playlist preloaded it. */
  adopt?: Preloaded;
  /** Assets to play after this one (?next=, and the asset after a ?preroll=). */
  queue?: string[];
}

/** The rendered watch page's lifetime: its timers and document listeners end when the next item replaces it. */
let life: AbortController | null = null;
const ASSET_ID = /^[a-z0-9]{16}$/;
/** Seconds before the end of one playlist item that the next is loaded (paused, a few seconds buffered). */
const PRELOAD_SECONDS = 20;
/** Seconds before the end that the next playlist item is started (under the playing one). */
const HANDOVER_LEAD = 0.25;

export async function renderWatch(app: HTMLElement, id: string, m: Me, opts: WatchOptions = {}): Promise<void> {
  const q = new URLSearchParams(location.search);
  // A playlist: ?next=ID[,ID…] plays after this video; ?preroll=ID before it (an ad, a trailer).
  if (!opts.adopt && !opts.queue) {
    const ids = (v: string | null) => (v ?? '').split(',').filter((x) => ASSET_ID.test(x));
    const next = ids(q.get('next'));
    const preroll = ids(q.get('preroll'))[0];
    if (preroll) return renderWatch(app, preroll, m, { queue: [id, ...next] });
    opts = { queue: next };
  }
  life?.abort();
  life = new AbortController();
  const signal = life.signal;
  const every = (f: () => void, ms: number) => {
    const t = setInterval(f, ms);
    signal.addEventListener('abort', () => clearInterval(t));
  };
  // The page's ?token= is for the video in its URL, not for the other items of a playlist.
  const pageToken = /^\/watch\/([a-z0-9]{16})/.exec(location.pathname)?.[1] === id ? q.get('token') : null;
  let loaded: Loaded;
  try {
    loaded = opts.adopt?.loaded ?? (await loadAsset(id, m, pageToken));
  } catch (err) {
    const refused = refusalText(err);
    const code = err instanceof ApiError ? err.code : '';
    const title = code.startsWith('PLAYBACK_TOKEN_')
      ? code === 'PLAYBACK_TOKEN_REQUIRED'
        ? 'This video is private'
        : 'This link does not work'
      : code === 'VIEWER_LIMIT_REACHED' || code === 'SESSION_LIMIT_REACHED'
        ? 'Too many viewers'
        : 'Video not found';
    const signIn = !m.user && !m.open && code === 'PLAYBACK_TOKEN_REQUIRED';
    app.replaceChildren(
      el('h1', { text: title }),
      el('p', { class: 'message', role: 'alert', 'data-code': code, text: refused ?? readableError(err) }),
      ...(signIn ? [el('p', {}, el('a', { href: signInHref(), text: 'Sign in' }), ' to watch it.')] : []),
    );
    return;
  }
  const asset: AssetX = loaded.asset;
  const { token, managed } = loaded;
  // Audio only (podcast, music): said so by the API, or known from the renditions (a server without `mediaType`).
  const audioOnly =
    asset.mediaType === 'audio' || (asset.renditions.length > 0 && !asset.renditions.some((r) => r.type === 'video'));
  // A live event has no poster yet (it is made from the archive when the event ends).
  const poster = asset.status === 'live' ? null : asset.playback.poster;
  let media: HTMLMediaElement;
  let picture: HTMLElement;
  const adopted = opts.adopt?.media;
  if (adopted) adopted.classList.remove('next');
  if (audioOnly) {
    media = adopted ?? el('audio', { id: 'audio', preload: 'auto', 'aria-label': asset.title });
    media.id = 'audio';
    picture = poster
      ? el('img', { class: 'cover', src: poster, alt: `Cover art of ${asset.title}` })
      : el('div', { class: 'cover', role: 'img', 'aria-label': asset.title });
  } else {
    const video = (adopted as HTMLVideoElement | undefined) ?? el('video', { playsinline: '', preload: 'auto' });
    video.id = 'video';
    video.setAttribute('aria-label', asset.title);
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
  // Why the adaptation chose what plays (SmoothAbr's reason; "Shaka ABR" with ?abr=shaka).
  const why = el('span', { class: 'abr-reason', 'aria-live': 'off' });
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
  const assetNotes = asset.notes ?? [];
  const badges = accessBadges(asset);
  const editor = managed && can(m, 'assets:write') ? managed : null;
  let stopPlayback = async () => {};
  const access = editor
    ? accessSection(
        editor,
        (next, reload) => {
          // A new policy or encryption changes what and how the page plays: load it again.
          if (reload) location.reload();
          else access?.viewers(next);
        },
        () => stopPlayback(),
      )
    : null;
  const signedLink =
    managed && managed.playbackPolicy === 'signed' && can(m, 'playback:sign') ? signedLinkSection(managed) : null;
  // Who may read the asset sees its viewing quality (from the players' CMCD), refreshed with the viewers.
  const qoe = managed && asset.status !== 'live' ? qoeSection(asset.id) : null;
  app.replaceChildren(
    el('h1', {}, asset.title, ...(live ? [' ', liveBadge] : []), ...badges.flatMap((b) => [' ', b])),
    ...(assetNotes.length
      ? [el('ul', { class: 'notes', 'aria-label': 'Notes' }, ...assetNotes.map((n) => el('li', { text: n })))]
      : []),
    frame,
    el('p', { class: 'stats' }, current, ' · ', bandwidth, ' · ', why),
    message,
    ...(access ? [access.section] : []),
    ...(signedLink ? [signedLink] : []),
    ...(qoe ? [qoe.section] : []),
    shareSection(asset, abs, token, loaded.expiresAt),
  );
  // Editors: the viewer count, looked at every 10 s.
  if (access) {
    every(() => {
      api.get(asset.id).then((a) => access.viewers(a), () => {});
    }, 10_000);
  }
  if (qoe) {
    void qoe.refresh();
    every(() => void qoe.refresh(), 10_000);
  }

  if (!asset.playable) {
    message.textContent = asset.status === 'failed' ? `This video failed: ${asset.error?.message}` : 'Not playable yet…';
    return;
  }
  let stream: OpenStream | null;
  if (opts.adopt) {
    stream = opts.adopt;
    // The text displayer draws into the frame the player is in now.
    stream.player.setVideoContainer(frame);
  } else {
    stream = await openStream(frame, media, message, asset, live);
  }
  if (!stream) return;
  const { player, abr } = stream;
  (window as unknown as { smoothcastPlayer: shaka.Player }).smoothcastPlayer = player;
  stopPlayback = () => player.unload().catch(() => {});
  const captions = captionsMenu(player, icon(ICONS.captions));
  const audio = audioMenu(player, icon(ICONS.headphones));
  muteBtn.after(captions.control, audio.control);
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
    why.textContent =
      quality.value !== 'auto' ? 'chosen by hand' : abr ? (abr.current()?.reason ?? 'starting') : 'Shaka ABR';
  };
  player.addEventListener('variantchanged', update);
  player.addEventListener('adaptation', update);
  every(update, 1000);
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
    every(drawSeek, 1000);
    goLive.addEventListener('click', () => {
      player.goToLive();
      void media.play().catch(() => {});
    });
    // When the event ends the page goes on as the archive (Shaka turns the static manifest into VOD itself). A
    // visitor cannot follow the asset's events (the API's): the badge stays.
    if (managed) api.follow(asset.id, (a) => {
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
  const syncMute = () => {
    muteBtn.replaceChildren(icon(media.muted ? ICONS.muted : ICONS.volume));
    muteBtn.setAttribute('aria-label', media.muted ? 'Unmute' : 'Mute');
    muteBtn.setAttribute('aria-pressed', String(media.muted));
  };
  const mute = () => {
    media.muted = !media.muted;
    syncMute();
  };
  muteBtn.addEventListener('click', mute);
  const fullscreen = () => {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void frame.requestFullscreen?.();
  };
  fsBtn.addEventListener('click', fullscreen);
  document.addEventListener(
    'keydown',
    (e) => {
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
    },
    { signal },
  );
  drawSeek();
  playBtn.disabled = false;
  if (adopted) {
    // The previous item handed over a playing player: its mute state and playback go on.
    syncMute();
    syncPlay();
  } else {
    // ?autoplay=1 starts at once (browsers allow that muted: add &muted=1).
    if (q.get('muted') === '1' && !media.muted) mute();
    if (q.get('autoplay') === '1') void media.play().catch(() => {});
  }
  if (opts.queue?.length && !live) rollOver(app, m, frame, media, player, opts.queue, signal);
}

/**
 * Plays the playlist's next item when this one ends, with no gap: PRELOAD_SECONDS before the end the next asset is
 * loaded into a second player on a second element under this one (paused: SmoothAbr keeps its buffer small; it
 * starts from this player's bandwidth estimate); at the end it is started and brought to the top in the same
 * frame, then the page is rebuilt around it.
 */
function rollOver(
  app: HTMLElement,
  m: Me,
  frame: HTMLElement,
  media: HTMLMediaElement,
  player: shaka.Player,
  queue: string[],
  signal: AbortSignal,
): void {
  const [nextId, ...rest] = queue as [string, ...string[]];
  let next: Promise<Preloaded | null> | null = null;
  const preload = () => {
    next ??= preloadItem(frame, nextId, m, media.muted);
    return next;
  };
  media.addEventListener(
    'timeupdate',
    () => {
      if (Number.isFinite(media.duration) && media.duration - media.currentTime <= PRELOAD_SECONDS) void preload();
    },
    { signal },
  );
  // The hand-over: the next item is started a quarter second before this one's end (Chromium takes ~200 ms from
  // play() to the first frame of a paused, preloaded element); it lies under this one in the same grid cell, so
  // it is not seen yet. Once it presents frames of its own and this one has shown its last frame (or ended), this
  // one is removed, showing it, and the page is rebuilt around it. Starting it at 'ended' left ~200 ms of a still
  // picture.
  let started: Preloaded | null = null;
  let nextShowing = false;
  let lastShown = false;
  let handedOver = false;
  const handOver = () => {
    if (handedOver || signal.aborted || !started || !nextShowing || !lastShown) return;
    handedOver = true;
    media.remove();
    void renderWatch(app, nextId, m, { adopt: started, queue: rest }).then(() => player.destroy().catch(() => {}));
  };
  const start = (n: Preloaded) => {
    if (started || signal.aborted) return;
    started = n;
    n.media.muted = media.muted;
    void n.media.play().catch(() => {});
    const shown = () => {
      nextShowing = true;
      handOver();
    };
    const nv = n.media as HTMLVideoElement;
    if (typeof nv.requestVideoFrameCallback === 'function') nv.requestVideoFrameCallback(shown);
    else n.media.addEventListener('playing', shown, { once: true });
  };
  const v = media as HTMLVideoElement;
  if (typeof v.requestVideoFrameCallback === 'function') {
    const near = (_now: number, meta: { mediaTime: number }) => {
      if (signal.aborted || handedOver) return;
      const left = media.duration - meta.mediaTime;
      if (left <= HANDOVER_LEAD) void preload().then((n) => n && start(n));
      // The last frame (within one frame of the end at 30 fps).
      if (left <= 0.04) {
        lastShown = true;
        handOver();
        return;
      }
      v.requestVideoFrameCallback(near);
    };
    // Frame by frame only over the last second and a half.
    let watching = false;
    media.addEventListener(
      'timeupdate',
      () => {
        if (watching || !Number.isFinite(media.duration) || media.duration - media.currentTime > 1.5) return;
        watching = true;
        v.requestVideoFrameCallback(near);
      },
      { signal },
    );
  }
  media.addEventListener(
    'ended',
    () => {
      lastShown = true;
      void preload().then((n) => {
        if (!n) return;
        start(n);
        handOver();
      });
    },
    { signal },
  );
}

type Preloaded = OpenStream & { media: HTMLMediaElement; loaded: Loaded };

/** The next playlist item loaded, paused, under the playing one; null when it cannot play (it is then skipped). */
async function preloadItem(frame: HTMLElement, id: string, m: Me, muted: boolean): Promise<Preloaded | null> {
  try {
    const loaded = await loadAsset(id, m, null);
    const a = loaded.asset;
    if (!a.playable) return null;
    const audioOnly = a.mediaType === 'audio' || (a.renditions.length > 0 && !a.renditions.some((r) => r.type === 'video'));
    const media = audioOnly
      ? el('audio', { preload: 'auto', class: 'next' })
      : el('video', { playsinline: '', preload: 'auto', class: 'next' });
    media.muted = muted;
    // First in the frame: painted under the playing element.
    frame.prepend(media);
    const stream = await openStream(frame, media, el('p'), a, false);
    if (!stream) {
      media.remove();
      return null;
    }
    return { ...stream, media, loaded };
  } catch {
    return null;
  }
}

// The library: every asset with poster, title, duration, status and date; watch links; delete with confirmation.
// A live event (status `live`) has a LIVE badge on its poster and a link to its stream's page. Small badges say a
// video is signed (plays only from signed links) or encrypted; editors see how many watch it now.
import { type Asset, api, can, clock, el, type Me, readableError, statusText } from './api.ts';
import { liveHref } from './live.ts';

/** The access badges of an asset: "signed", and its encryption. */
export function accessBadges(a: Pick<Asset, 'playbackPolicy' | 'encryption'>): HTMLElement[] {
  const out: HTMLElement[] = [];
  if (a.playbackPolicy === 'signed') {
    out.push(el('span', { class: 'badge signed', title: 'Plays only from signed links', text: 'signed' }));
  }
  if (a.encryption && a.encryption !== 'none') {
    out.push(
      el('span', {
        class: 'badge encrypted',
        title: `Encrypted (${a.encryption})`,
        'data-encryption': a.encryption,
        text: `encrypted · ${a.encryption}`,
      }),
    );
  }
  return out;
}

/** "3 watching" (of a limit of 10). */
export function viewersText(a: Pick<Asset, 'viewers' | 'maxViewers'>): string {
  const n = a.viewers ?? 0;
  return `${n} watching${a.maxViewers ? ` (limit ${a.maxViewers})` : ''}`;
}

/** Posters of signed videos, with a playback token (one per video for the page's life). */
const signedPosters = new Map<string, Promise<string | null>>();
function signedPoster(a: Asset): Promise<string | null> {
  let p = signedPosters.get(a.id);
  if (!p) {
    p = api.playbackToken(a.id, { expiresInSeconds: 3600 }).then(
      (g) => g.playback.poster,
      () => null,
    );
    signedPosters.set(a.id, p);
  }
  return p;
}

function card(a: Asset, onDelete: ((a: Asset) => void) | null, editor: boolean, canSign: boolean): HTMLElement {
  // A live event has no poster yet (it is made from the archive). A signed video's poster needs a token: asked
  // for when the user may sign, else the blank poster.
  const signed = a.playbackPolicy === 'signed';
  const blank = () => el('div', { class: 'noposter', 'aria-hidden': 'true' });
  const poster =
    a.playback.poster && a.status !== 'live' && (!signed || canSign)
      ? el('img', { alt: '', loading: 'lazy', width: '320', height: '180' })
      : blank();
  if (poster instanceof HTMLImageElement) {
    if (signed) void signedPoster(a).then((src) => (src ? (poster.src = src) : poster.replaceWith(blank())));
    else poster.src = a.playback.poster ?? '';
  }
  // A poster not made yet (an archive's is made just after it is ready): the blank one rather than a broken image.
  poster.addEventListener('error', () => poster.replaceWith(blank()));
  const title = a.playable ? el('a', { href: `/watch/${a.id}`, text: a.title }) : el('span', { text: a.title });
  const del = el('button', { type: 'button', class: 'delete', 'aria-label': `Delete ${a.title}` }, 'Delete');
  del.addEventListener('click', () => onDelete?.(a));
  const live = a.status === 'live';
  const badges = accessBadges(a);
  return el(
    'li',
    { class: `asset ${a.status}`, 'data-id': a.id, 'data-status': a.status },
    poster,
    ...(live ? [el('span', { class: 'badge live', text: 'LIVE' })] : []),
    el('h2', {}, title),
    ...(badges.length ? [el('p', { class: 'access' }, ...badges)] : []),
    el(
      'p',
      { class: 'meta' },
      el('span', { text: a.duration ? clock(a.duration) : '–' }),
      ' · ',
      el('time', { datetime: a.createdAt, text: new Date(a.createdAt).toLocaleString() }),
    ),
    el(
      'p',
      { class: 'status' },
      statusText(a),
      ...(live && a.liveStreamId ? [' · ', el('a', { href: liveHref(a.liveStreamId), text: 'Stream' })] : []),
    ),
    ...(editor && a.viewers !== undefined ? [el('p', { class: 'viewers', text: viewersText(a) })] : []),
    ...(onDelete ? [del] : []),
  );
}

export async function renderLibrary(app: HTMLElement, m: Me): Promise<void> {
  const editor = can(m, 'assets:write');
  const list = el('ul', { class: 'library', 'aria-label': 'Videos' });
  const note = el('p', { role: 'status', 'aria-live': 'polite' });
  app.replaceChildren(el('h1', { text: 'Library' }), note, list);

  const onDelete = async (a: Asset) => {
    if (!confirm(`Delete “${a.title}” and all its files? This cannot be undone.`)) return;
    try {
      await api.remove(a.id);
    } catch (err) {
      note.textContent = `Could not delete “${a.title}”: ${readableError(err)}`;
      return;
    }
    list.querySelector(`[data-id="${a.id}"]`)?.remove();
    note.textContent = `Deleted “${a.title}”.`;
  };
  let shown = '';
  const draw = async () => {
    let assets: Asset[];
    try {
      assets = await api.list();
    } catch (err) {
      note.textContent = `Could not load the library: ${readableError(err)}`;
      return false;
    }
    const busy = assets.some((a) => a.status === 'queued' || a.status === 'processing' || a.status === 'live');
    // Redrawn only when something shown changed (a redraw would take the keyboard focus off a link).
    const now = JSON.stringify(assets.map((a) => [a.id, a.updatedAt, a.status, a.progress?.percent, a.viewers, a.maxViewers]));
    if (now === shown) return busy;
    shown = now;
    list.replaceChildren(
      ...assets.map((a) => card(a, editor ? (x) => void onDelete(x) : null, editor, can(m, 'playback:sign'))),
    );
    if (!assets.length) {
      list.append(
        el(
          'li',
          { class: 'empty' },
          'No videos yet.',
          ...(can(m, 'uploads:create') ? [' ', el('a', { href: '/' }, 'Upload one')] : []),
        ),
      );
    }
    return busy;
  };
  // While something encodes or is live, refresh every few seconds; editors see the viewer counts move, so for
  // them it refreshes every 15 s anyway.
  const tick = async () => {
    if (await draw()) setTimeout(() => void tick(), 3000);
    else if (editor && !m.open) setTimeout(() => void tick(), 15_000);
  };
  await tick();
}

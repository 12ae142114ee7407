// The library: every asset with poster, title, duration, status and date; watch links; delete with confirmation.
// A live event (status `live`) has a LIVE badge on its poster and a link to its stream's page.
import { type Asset, api, clock, el, statusText } from './api.ts';
import { liveHref } from './live.ts';

function card(a: Asset, onDelete: (a: Asset) => void): HTMLElement {
  // A live event has no poster yet (it is made from the archive).
  const poster =
    a.playback.poster && a.status !== 'live'
      ? el('img', { src: a.playback.poster, alt: '', loading: 'lazy', width: '320', height: '180' })
      : el('div', { class: 'noposter', 'aria-hidden': 'true' });
  // A poster not made yet (an archive's is made just after it is ready): the blank one rather than a broken image.
  poster.addEventListener('error', () => poster.replaceWith(el('div', { class: 'noposter', 'aria-hidden': 'true' })));
  const title = a.playable ? el('a', { href: `/watch/${a.id}`, text: a.title }) : el('span', { text: a.title });
  const del = el('button', { type: 'button', class: 'delete', 'aria-label': `Delete ${a.title}` }, 'Delete');
  del.addEventListener('click', () => onDelete(a));
  const live = a.status === 'live';
  return el(
    'li',
    { class: `asset ${a.status}`, 'data-id': a.id, 'data-status': a.status },
    poster,
    ...(live ? [el('span', { class: 'badge live', text: 'LIVE' })] : []),
    el('h2', {}, title),
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
    del,
  );
}

export async function renderLibrary(app: HTMLElement): Promise<void> {
  const list = el('ul', { class: 'library', 'aria-label': 'Videos' });
  const note = el('p', { role: 'status', 'aria-live': 'polite' });
  app.replaceChildren(el('h1', { text: 'Library' }), note, list);

  const onDelete = async (a: Asset) => {
    if (!confirm(`Delete “${a.title}” and all its files? This cannot be undone.`)) return;
    await api.remove(a.id);
    list.querySelector(`[data-id="${a.id}"]`)?.remove();
    note.textContent = `Deleted “${a.title}”.`;
  };
  const draw = async () => {
    let assets: Asset[];
    try {
      assets = await api.list();
    } catch (err) {
      note.textContent = `Could not load the library: ${(err as Error).message}`;
      return false;
    }
    list.replaceChildren(...assets.map((a) => card(a, (x) => void onDelete(x))));
    if (!assets.length) list.append(el('li', { class: 'empty' }, 'No videos yet. ', el('a', { href: '/' }, 'Upload one')));
    return assets.some((a) => a.status === 'queued' || a.status === 'processing' || a.status === 'live');
  };
  // While something encodes or is live, refresh every few seconds.
  const tick = async () => {
    if (await draw()) setTimeout(() => void tick(), 3000);
  };
  await tick();
}

// The watch page's "Viewing quality" panel: what the origins gathered from the CMCD (CTA-5004) players send with
// their requests (GET /api/assets/:id/qoe) — sessions, the share of them that stalled, the median startup and the
// average bitrate played.
import { api, el, type Qoe, readableError } from './api.ts';
import { uid } from './ui.ts';

/** A ratio as a percentage: whole numbers as such, otherwise one decimal. */
function percent(ratio: number): string {
  const p = Math.round(ratio * 1000) / 10;
  return `${p}%`;
}

function seconds(ms: number | null): string {
  return ms === null ? '–' : `${(ms / 1000).toFixed(2)} s`;
}

function mbps(bitsPerSecond: number | null): string {
  return bitsPerSecond === null ? '–' : `${(bitsPerSecond / 1e6).toFixed(2)} Mb/s`;
}

export function qoeSection(assetId: string): { section: HTMLElement; refresh(): Promise<void> } {
  const heading = uid('qoe-h');
  const items = {
    sessions: el('dd', { 'data-stat': 'sessions', text: '–' }),
    stallRatio: el('dd', { 'data-stat': 'stall-ratio', text: '–' }),
    startup: el('dd', { 'data-stat': 'median-startup', text: '–' }),
    bitrate: el('dd', { 'data-stat': 'average-bitrate', text: '–' }),
  };
  const figures = el(
    'dl',
    { class: 'qoe-figures', hidden: '' },
    el('div', {}, el('dt', { text: 'Sessions' }), items.sessions),
    el(
      'div',
      { title: 'Sessions in which the player ran out of buffer at least once' },
      el('dt', { text: 'Stall ratio' }),
      items.stallRatio,
    ),
    el(
      'div',
      { title: "From the player's first request until it was playing" },
      el('dt', { text: 'Median startup' }),
      items.startup,
    ),
    el(
      'div',
      { title: 'Encoded bitrate of the video played, weighted by its duration' },
      el('dt', { text: 'Average bitrate' }),
      items.bitrate,
    ),
  );
  const empty = el('p', { class: 'qoe-empty', hidden: '', text: 'No viewing sessions yet' });
  const alert = el('p', { class: 'alert', role: 'alert' });
  const section = el(
    'section',
    { class: 'qoe panel', 'aria-labelledby': heading, 'aria-busy': 'true' },
    el('h2', { id: heading, text: 'Viewing quality' }),
    figures,
    empty,
    alert,
  );
  const show = (q: Qoe) => {
    empty.hidden = q.sessions > 0;
    figures.hidden = q.sessions === 0;
    items.sessions.textContent = String(q.sessions);
    items.stallRatio.textContent = percent(q.stallRatio);
    items.startup.textContent = seconds(q.medianStartupMs);
    items.bitrate.textContent = mbps(q.averageBitrate);
  };
  return {
    section,
    async refresh() {
      section.setAttribute('aria-busy', 'true');
      try {
        show(await api.qoe(assetId));
        alert.textContent = '';
      } catch (err) {
        alert.textContent = `Could not load the viewing quality: ${readableError(err)}`;
      } finally {
        section.setAttribute('aria-busy', 'false');
      }
    },
  };
}

// A small status page at `/` until the web app (Vite) takes over: the library with live status and playback links.
import type { FastifyInstance } from 'fastify';

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>smoothcast</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{padding:.4rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
img{width:120px;height:68px;object-fit:cover;background:#eee}code{background:#f4f4f4;padding:0 .2rem}
</style></head><body>
<h1>smoothcast</h1>
<p>Add videos with <code>npx smoothcast import FILE…</code>. API: <a href="/api/assets">/api/assets</a>,
health: <a href="/healthz">/healthz</a>.</p>
<table><thead><tr><th>Poster</th><th>Title</th><th>Status</th><th>Duration</th><th>Playback</th></tr></thead>
<tbody id="rows"><tr><td colspan="5">Loading…</td></tr></tbody></table>
<script>
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
async function load() {
  const r = await fetch('/api/assets?limit=100');
  const { assets } = await r.json();
  document.getElementById('rows').innerHTML = assets.length ? assets.map((a) => {
    const st = a.status === 'processing' && a.progress ? 'processing ' + Math.round(a.progress.percent) + '%' : a.status;
    const err = a.error ? '<br><small>' + esc(a.error.code + ': ' + a.error.message) + '</small>' : '';
    const links = [a.playback.hls && '<a href="' + esc(a.playback.hls) + '">HLS</a>',
      a.playback.dash && '<a href="' + esc(a.playback.dash) + '">DASH</a>'].filter(Boolean).join(' · ');
    return '<tr><td>' + (a.playback.poster ? '<img alt="" src="' + esc(a.playback.poster) + '">' : '') + '</td><td>' +
      esc(a.title) + '</td><td>' + esc(st) + err + '</td><td>' + (a.duration ? a.duration.toFixed(1) + ' s' : '') +
      '</td><td>' + links + '</td></tr>';
  }).join('') : '<tr><td colspan="5">No videos yet.</td></tr>';
}
load(); setInterval(load, 2000);
</script></body></html>`;

export function registerHome(app: FastifyInstance): void {
  app.get('/', async (_req, reply) => reply.header('content-type', 'text/html; charset=utf-8').send(PAGE));
}

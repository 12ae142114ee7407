// Picks the page from the path: / (upload), /library, /watch/<id>, /live (the streams) and /live/<id> (one
// stream); the older /?live and /?live=<id> still work.
import './style.css';
import { renderLibrary } from './library.ts';
import { renderLiveList, renderLiveStream } from './live.ts';
import { renderUpload } from './upload.ts';
import { renderWatch } from './watch.ts';

const app = document.getElementById('app') as HTMLElement;
const path = location.pathname;
const query = new URLSearchParams(location.search);
const watch = /^\/watch\/([a-z0-9]{16})$/.exec(path);
const livePath = /^\/live(?:\/([a-z0-9]{16}))?\/?$/.exec(path);
const live = livePath ? (livePath[1] ?? '') : path === '/' && query.has('live') ? (query.get('live') ?? '') : null;
const page = watch ? 'watch' : live !== null ? 'live' : path === '/library' ? 'library' : 'upload';
for (const a of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
  if (a.dataset.nav === page) a.setAttribute('aria-current', 'page');
}
if (query.has('embed')) document.body.classList.add('embed');
if (watch?.[1]) void renderWatch(app, watch[1]);
else if (live) void renderLiveStream(app, live);
else if (live === '') void renderLiveList(app);
else if (page === 'library') void renderLibrary(app);
else renderUpload(app);

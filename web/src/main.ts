// Picks the page from the path: / (upload), /library, /watch/<id>.
import './style.css';
import { renderLibrary } from './library.ts';
import { renderUpload } from './upload.ts';
import { renderWatch } from './watch.ts';

const app = document.getElementById('app') as HTMLElement;
const path = location.pathname;
const watch = /^\/watch\/([a-z0-9]{16})$/.exec(path);
const page = watch ? 'watch' : path === '/library' ? 'library' : 'upload';
for (const a of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
  if (a.dataset.nav === page) a.setAttribute('aria-current', 'page');
}
if (new URLSearchParams(location.search).has('embed')) document.body.classList.add('embed');
if (watch?.[1]) void renderWatch(app, watch[1]);
else if (page === 'library') void renderLibrary(app);
else renderUpload(app);

// Picks the page from the path: / (upload), /library, /watch/<id>, /live (the streams) and /live/<id> (one
// stream), /login, /setup (first run), /account, and for admins /users, /tokens and /webhooks; the older /?live
// and /?live=<id> still work. Who is signed in (GET /api/me) is asked first: a page that needs a user sends a
// visitor to /login (or /setup while the server has none); the watch page is open to visitors (public or signed
// links).
import './style.css';
import { renderAccount, renderHeader, renderLogin, renderSetup } from './account.ts';
import { renderTokens, renderUsers, renderWebhooks } from './admin.ts';
import { me, requireSignIn, signInHref } from './api.ts';
import { renderLibrary } from './library.ts';
import { renderLiveList, renderLiveStream } from './live.ts';
import { renderUpload } from './upload.ts';
import { renderWatch } from './watch.ts';

const PAGES = ['login', 'setup', 'account', 'users', 'tokens', 'webhooks'] as const;
type NamedPage = (typeof PAGES)[number];

async function main(): Promise<void> {
  const app = document.getElementById('app') as HTMLElement;
  const path = location.pathname.replace(/(.)\/$/, '$1');
  const query = new URLSearchParams(location.search);
  const watch = /^\/watch\/([a-z0-9]{16})$/.exec(path);
  const livePath = /^\/live(?:\/([a-z0-9]{16}))?$/.exec(path);
  const live = livePath ? (livePath[1] ?? '') : path === '/' && query.has('live') ? (query.get('live') ?? '') : null;
  const named = (PAGES as readonly string[]).includes(path.slice(1)) ? (path.slice(1) as NamedPage) : null;
  const page = watch ? 'watch' : live !== null ? 'live' : path === '/library' ? 'library' : (named ?? 'upload');
  if (query.has('embed')) document.body.classList.add('embed');

  const m = await me();
  renderHeader(m);
  for (const a of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
    if (a.dataset.nav === page) a.setAttribute('aria-current', 'page');
  }
  // Everything but the watch page and signing in needs a user (unless the server has no accounts at all).
  const needsUser = !['watch', 'login', 'setup'].includes(page);
  requireSignIn(needsUser);
  if (needsUser && !m.user && !m.open && m.scopes.length === 0) {
    location.replace(m.setupRequired ? '/setup' : signInHref());
    return;
  }
  if (watch?.[1]) await renderWatch(app, watch[1], m);
  else if (live) await renderLiveStream(app, live, m);
  else if (live === '') await renderLiveList(app);
  else if (page === 'library') await renderLibrary(app, m);
  else if (page === 'login') renderLogin(app, m);
  else if (page === 'setup') renderSetup(app, m);
  else if (page === 'account') renderAccount(app, m);
  else if (page === 'users') await renderUsers(app, m);
  else if (page === 'tokens') await renderTokens(app, m);
  else if (page === 'webhooks') await renderWebhooks(app, m);
  else renderUpload(app, m);
}

void main();

// The web app (built by Vite into dist/web, see web/): its pages at /, /library, /watch/<id>, /live and /live/<id> (one index.html,
// the script picks the page), its hashed assets under /assets/ (immutable). The files are few and small, so they
// are read once at start and served from memory.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { SmoothcastError } from '../../core/errors.ts';
import { sendBytes } from '../http/send-bytes.ts';

export const WEB_DIST = fileURLToPath(new URL('../../../dist/web/', import.meta.url));

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

interface WebFile {
  body: Buffer;
  type: string;
  etag: string;
}

function load(dir: string): Map<string, WebFile> {
  const files = new Map<string, WebFile>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(join(dir, r)).isDirectory()) walk(r);
      else {
        const body = readFileSync(join(dir, r));
        const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
        files.set(r, { body, type: TYPES[extname(r)] ?? 'application/octet-stream', etag });
      }
    }
  };
  walk('');
  return files;
}

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>smoothcast</title>
<p>The web app is not built: run <code>npm start</code> (which builds it) or <code>npm run build:web</code>.
The API is at <a href="/api/assets">/api/assets</a>.</p>`;

export function registerWeb(app: FastifyInstance, dist = WEB_DIST): void {
  let files: Map<string, WebFile>;
  try {
    files = load(dist);
  } catch {
    files = new Map();
  }
  const index = files.get('index.html');
  const page = async (_req: unknown, reply: FastifyReply) => {
    reply.header('cache-control', 'no-cache');
    reply.header('content-type', 'text/html; charset=utf-8');
    if (index) reply.header('etag', index.etag);
    return reply.send(index ? index.body : NOT_BUILT);
  };
  app.get('/', page);
  app.get('/library', page);
  app.get('/watch/:id', page);
  app.get('/live', page);
  app.get('/live/:id', page);
  // Accounts: sign-in, first run, the caller's account, and the admin pages (the API behind them checks access).
  for (const path of ['/login', '/setup', '/account', '/users', '/tokens', '/webhooks']) app.get(path, page);
  app.get<{ Params: { '*': string } }>('/assets/*', async (req, reply) => {
    const f = files.get(`assets/${req.params['*']}`);
    if (!f) throw new SmoothcastError('NOT_FOUND', 'no such file');
    return sendBytes(req, reply, {
      size: f.body.length,
      etag: f.etag,
      contentType: f.type,
      // File names carry a content hash: a new build is new URLs.
      cacheControl: 'public, max-age=31536000, immutable',
      read: async (o, n) => f.body.subarray(o, o + n),
    });
  });
}

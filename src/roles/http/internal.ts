// GET/HEAD /internal/held/<key>: this node's held files (an encode's scratch renditions, a live event's growing
// files) for the origins of other nodes, one byte range per request (see src/core/storage/held.ts). Only nodes of
// the cluster may ask (a secret derived from the shared master key); the answer is never cacheable.
import type { FastifyInstance } from 'fastify';
import { SmoothcastError } from '../../core/errors.ts';
import { checkInternalSecret, type HeldFiles, INTERNAL_HEADER, SIZE_HEADER } from '../../core/storage/held.ts';
import { assertKey } from '../../core/storage/storage.ts';

/** The largest range one request may ask for (a segment is far smaller; an index read is a few KiB). */
const MAX_RANGE = 64 * 2 ** 20;

export function registerInternal(app: FastifyInstance, opts: { held: HeldFiles; secret: string }): void {
  const handler = async (
    req: { headers: Record<string, string | string[] | undefined>; params: unknown; method: string },
    reply: import('fastify').FastifyReply,
  ) => {
    if (!checkInternalSecret(opts.secret, req.headers[INTERNAL_HEADER])) {
      throw new SmoothcastError('AUTH_INVALID', 'not a node of this cluster');
    }
    const key = assertKey(String((req.params as { '*': string })['*'] ?? ''));
    reply.header('cache-control', 'no-store');
    const st = await opts.held.stat(key);
    if (!st) throw new SmoothcastError('NOT_FOUND', `${key} is not held here`);
    reply.header('last-modified', new Date(st.mtimeMs).toUTCString());
    reply.header('accept-ranges', 'bytes');
    // The size in a header of its own: a HEAD answer's Content-Length is rewritten by the framework.
    reply.header(SIZE_HEADER, String(st.size));
    if (req.method === 'HEAD') return reply.code(200).send();
    const m = /^bytes=(\d{1,15})-(\d{1,15})$/.exec(String(req.headers.range ?? ''));
    if (!m) throw new SmoothcastError('BAD_REQUEST', 'one byte range (bytes=a-b) is required');
    const start = Number(m[1]);
    const end = Math.min(Number(m[2]), st.size - 1);
    if (start > end || end - start + 1 > MAX_RANGE) {
      reply.header('content-range', `bytes */${st.size}`);
      return reply.code(416).send();
    }
    const bytes = await opts.held.read(key, start, end - start + 1);
    reply.header('content-range', `bytes ${start}-${start + bytes.length - 1}/${st.size}`);
    reply.header('content-type', 'application/octet-stream');
    return reply.code(206).send(bytes);
  };
  app.get('/internal/held/*', { config: { scope: 'public' } }, handler);
}

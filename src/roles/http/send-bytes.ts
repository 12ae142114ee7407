// Answers a GET/HEAD for an immutable byte object of known size: strong ETag, If-None-Match → 304,
// a single Range (RFC 9110 §14), HEAD without reading. Only the bytes that go out are read, in one positioned read.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SmoothcastError } from '../../core/errors.ts';
import type { BufferPool } from './buffer-pool.ts';

/** Bodies of at least this size are read into pooled buffers (smaller ones come from Node's own slab). */
const POOLED_FROM = 64 * 1024;

export interface ByteObject {
  size: number;
  etag: string; // quoted strong validator, e.g. "r1-3.v0.12.51234"
  contentType: string;
  cacheControl: string;
  /** Reads [offset, offset+length) of the object, into the start of `into` when given. */
  read(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /** Where to take the read buffer of a large body from (and give it back once sent). */
  pool?: BufferPool;
  /**
   * Bit-rate throttling: the first `burstBytes` of the body at full speed, then `bytesPerSecond` — sent in small
   * paced writes, each a positioned read of its own bytes.
   */
  pace?: { burstBytes: number; bytesPerSecond: number };
}

/** Parses one `bytes=` range against a size; null when absent or not a single satisfiable-looking range. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null; // several ranges or another unit: RFC 9110 §14.2 lets us answer with the whole object
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return null;
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return null; // invalid range: ignore the header (§14.2)
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  // Weak comparison for If-None-Match (RFC 9110 §13.1.2).
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

export async function sendBytes(req: FastifyRequest, reply: FastifyReply, obj: ByteObject): Promise<FastifyReply> {
  reply.header('etag', obj.etag);
  reply.header('cache-control', obj.cacheControl);
  reply.header('accept-ranges', 'bytes');
  reply.header('content-type', obj.contentType);
  if (etagMatches(req.headers['if-none-match'], obj.etag)) {
    return reply.code(304).send();
  }
  let start = 0;
  let end = obj.size - 1;
  const range = parseRange(req.headers.range, obj.size);
  // If-Range with a different validator: send the whole object (RFC 9110 §13.1.5).
  const ifRange = req.headers['if-range'];
  if (range === 'unsatisfiable' && (!ifRange || ifRange === obj.etag)) {
    reply.header('content-range', `bytes */${obj.size}`);
    // The body is a JSON error, not a part of the object, and must not be cached as the immutable object.
    reply.header('content-type', 'application/json; charset=utf-8');
    reply.header('cache-control', 'no-store');
    const err = new SmoothcastError('RANGE_NOT_SATISFIABLE', `range ${req.headers.range} is outside 0-${obj.size - 1}`);
    return reply.code(416).send({ error: err.toJSON() });
  }
  if (range && range !== 'unsatisfiable' && (!ifRange || ifRange === obj.etag)) {
    start = range.start;
    end = range.end;
    reply.code(206);
    reply.header('content-range', `bytes ${start}-${end}/${obj.size}`);
  }
  const length = end - start + 1;
  reply.header('content-length', length);
  if (req.method === 'HEAD') {
    // Fastify would answer a body-less HEAD with content-length: 0; send the real headers ourselves.
    reply.hijack();
    reply.raw.writeHead(reply.statusCode, reply.getHeaders() as Record<string, string | number>);
    reply.raw.end();
    return reply;
  }
  if (obj.pace) return sendPaced(reply, obj, start, length, obj.pace);
  let bytes: Buffer | null;
  const pool = obj.pool;
  const into = pool && length >= POOLED_FROM ? pool.take(length) : undefined;
  try {
    bytes = await obj.read(start, length, into);
  } catch (err) {
    if (into) pool?.release(into);
    // Gone under a cached index: deleted by another process (`smoothcast rm`, another origin's DELETE).
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw forgetObject(reply, err);
    bytes = null;
  }
  if (bytes?.length !== length) {
    if (into) pool?.release(into);
    throw forgetObject(
      reply,
      new SmoothcastError('NOT_FOUND', 'the object is shorter than its index says; it may have been deleted'),
    );
  }
  if (into && pool) {
    // Back to the pool once the body has been handed to the kernel, or the connection is gone ('close' comes
    // after libuv has finished or cancelled the write).
    const res = reply.raw;
    let done = false;
    const recycle = () => {
      if (done) return;
      done = true;
      pool.release(into);
    };
    res.once('finish', recycle);
    res.once('close', recycle);
  }
  return reply.send(bytes);
}

/** Writes [start, start+length) in chunks, never ahead of burst + rate × elapsed; stops when the client goes. */
async function sendPaced(
  reply: FastifyReply,
  obj: ByteObject,
  start: number,
  length: number,
  pace: { burstBytes: number; bytesPerSecond: number },
): Promise<FastifyReply> {
  // Chunks of about a tenth of a second of the paced rate keep the rate smooth; 256 KiB at most per read.
  const chunk = Math.max(1024, Math.min(256 * 1024, Math.floor(pace.bytesPerSecond / 10)));
  reply.hijack();
  const res = reply.raw;
  res.writeHead(reply.statusCode, reply.getHeaders() as Record<string, string | number>);
  let closed = false;
  res.once('close', () => {
    closed = true;
  });
  const began = performance.now();
  let sent = 0;
  try {
    while (sent < length && !closed) {
      const allowed = pace.burstBytes + ((performance.now() - began) / 1000) * pace.bytesPerSecond;
      if (sent >= allowed) {
        await new Promise((r) => setTimeout(r, Math.max(5, ((sent - allowed + chunk) / pace.bytesPerSecond) * 1000)));
        continue;
      }
      const n = Math.min(length - sent, sent < pace.burstBytes ? 256 * 1024 : chunk);
      const bytes = await obj.read(start + sent, n);
      if (bytes.length !== n) throw new Error('object shorter than its size');
      sent += n;
      if (!res.write(bytes)) await new Promise((r) => res.once('drain', r).once('close', r));
    }
    res.end();
  } catch {
    res.destroy();
  }
  return reply;
}

/** An error answer must not carry the object's validators nor its year-long, immutable cache lifetime. */
function forgetObject(reply: FastifyReply, err: unknown): unknown {
  for (const h of ['etag', 'accept-ranges', 'content-range', 'content-length']) reply.removeHeader(h);
  reply.header('cache-control', 'no-store');
  return err;
}

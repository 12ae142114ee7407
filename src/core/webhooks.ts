// Webhooks in the Standard Webhooks format (https://www.standardwebhooks.com/): an admin registers a URL and the
// events it wants; each event becomes one delivery row per subscribed webhook, POSTed with the headers
// `webhook-id` (the message id, the same on every retry, so receivers can drop duplicates), `webhook-timestamp`
// (unix seconds of the attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of "${id}.${timestamp}.${body}">`,
// keyed by the secret (`whsec_` + base64 of 32 random bytes, shown once; the database holds it only wrapped by the
// master key, AES-256-GCM with the webhook id in the AAD, so a wrapped secret copied onto another webhook does not
// unwrap). A failed attempt (network error, timeout, non-2xx) is retried with backoff, then the delivery is marked
// failed. Every state is in the database, so a restart loses nothing; delivery is at least once: an attempt holds a
// lease on its row, and when the process dies mid-attempt the lease expires and the message is sent again, with
// the same id and body. No HTTP request is made inside a transaction (on PostgreSQL a transaction's callback may run
// again): a claim takes due deliveries in one, the requests run after it commits, each result is written after.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { sql } from 'kysely';
import { type Db, int, type Row, text, textOrNull } from './db/database.ts';
import { greatest, insertionOrder } from './db/dialect.ts';
import { SmoothcastError } from './errors.ts';
import { randomBase32 } from './ids.ts';

/** The events a webhook may subscribe to. */
export const WEBHOOK_EVENTS = [
  'asset.ready',
  'asset.failed',
  'asset.deleted',
  'upload.completed',
  'live.started',
  'live.stopped',
  'live.shutdown',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** What emit() takes: the subscribable events and `webhook.test` (sent by POST /api/webhooks/:id/test only). */
export const INTERNAL_EVENTS = [...WEBHOOK_EVENTS, 'webhook.test'] as const;
export type InternalEvent = (typeof INTERNAL_EVENTS)[number];

export function isWebhookEvent(s: unknown): s is WebhookEvent {
  return typeof s === 'string' && (WEBHOOK_EVENTS as readonly string[]).includes(s);
}

export const WEBHOOK_ID = /^wh_[a-z2-7]{16}$/;
export const DELIVERY_ID = /^msg_[a-z2-7]{26}$/;
export const MAX_URL_LENGTH = 2048;
/** Backoff before the 2nd, 3rd, … attempt; after the last one fails the delivery is `failed` (7 attempts in all). */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [5_000, 30_000, 120_000, 600_000, 3_600_000, 21_600_000];
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 10_000;
/** The loop sleeps until the next delivery is due, but never longer than this (a delivery emitted by another
 * process sharing the database is picked up within it). */
export const DEFAULT_MAX_SLEEP_MS = 5_000;
const SECRET_PREFIX = 'whsec_';

export interface Webhook {
  id: string;
  url: string;
  events: WebhookEvent[];
  createdAt: number;
  disabledAt: number | null;
}

/** create()'s answer: the only time the secret is shown. */
export interface CreatedWebhook {
  id: string;
  url: string;
  events: WebhookEvent[];
  /** `whsec_` + base64 of 32 random bytes. */
  secret: string;
  createdAt: number;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface Delivery {
  /** The message id (`webhook-id`), `msg_` + 26 base32 characters. */
  id: string;
  webhookId: string;
  event: InternalEvent;
  /** The exact JSON body that is signed and sent. */
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  /** When the next attempt is due (pending only; while an attempt runs, when its lease ends). */
  nextAttemptAt: number | null;
  /** The HTTP status of the last attempt (null: no answer). */
  lastStatus: number | null;
  lastError: string | null;
  createdAt: number;
  deliveredAt: number | null;
}

export type Logger = (msg: string, extra?: Record<string, unknown>) => void;

export interface WebhooksOptions {
  db: Db;
  /** The master key (32 bytes) that wraps the secrets. */
  master: Buffer;
  log: Logger;
  fetch?: typeof fetch;
  /** Clock (ms). */
  now?: () => number;
  /** Backoff between attempts (ms); its length + 1 is the number of attempts. */
  retryDelaysMs?: readonly number[];
  /** Per-attempt timeout (ms), headers included. */
  attemptTimeoutMs?: number;
  maxSleepMs?: number;
  /** Attempts in flight at once. */
  concurrency?: number;
}

// --- signing (the receiver's side is `verify`) -----------------------------------------------------------------

/** The HMAC key of a `whsec_…` secret (the prefix is optional, as in the reference implementation). */
function secretKey(secret: string | Uint8Array): Buffer {
  if (typeof secret !== 'string') {
    if (secret.length === 0) throw new SmoothcastError('BAD_REQUEST', 'a webhook secret cannot be empty');
    return Buffer.from(secret);
  }
  const b64 = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64) || b64 === '') {
    throw new SmoothcastError('BAD_REQUEST', 'a webhook secret is whsec_ followed by base64');
  }
  return Buffer.from(b64, 'base64');
}

/** `v1,<base64 HMAC-SHA256 of "${msgId}.${timestamp}.${body}">`; `timestamp` in unix seconds. */
export function sign(secret: string | Uint8Array, msgId: string, timestamp: number, body: string | Uint8Array): string {
  if (!Number.isSafeInteger(timestamp)) throw new SmoothcastError('BAD_REQUEST', 'the timestamp is unix seconds');
  const mac = createHmac('sha256', secretKey(secret));
  mac.update(`${msgId}.${timestamp}.`);
  mac.update(body);
  return `v1,${mac.digest('base64')}`;
}

export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

function header(headers: WebhookHeaders, name: string): string | null {
  if (headers instanceof Headers) return headers.get(name);
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== name) continue;
    if (Array.isArray(v)) return v.length === 1 ? v[0]! : null; // a repeated header is not a message we sent
    return v ?? null;
  }
  return null;
}

export interface VerifyOptions {
  /** How far the timestamp may be from now, either way (seconds). */
  toleranceSeconds?: number;
  /** Now in ms (or a clock); defaults to Date.now(). */
  now?: number | (() => number);
}

/**
 * The check a receiver runs on the RAW body (before any JSON parsing): the three headers are present, the timestamp
 * is within the tolerance of now (a replayed old message is refused even with its valid signature), and one of the
 * space-separated `v1,` signatures matches, compared in constant time. Never throws: anything malformed is false.
 */
export function verify(
  secret: string | Uint8Array,
  headers: WebhookHeaders,
  body: string | Uint8Array,
  options: VerifyOptions = {},
): boolean {
  const { toleranceSeconds = 300 } = options;
  try {
    const id = header(headers, 'webhook-id');
    const ts = header(headers, 'webhook-timestamp');
    const sigs = header(headers, 'webhook-signature');
    if (!id || !ts || !sigs || !/^\d{1,15}$/.test(ts)) return false;
    const nowMs = typeof options.now === 'function' ? options.now() : (options.now ?? Date.now());
    const timestamp = Number(ts);
    if (Math.abs(Math.floor(nowMs / 1000) - timestamp) > toleranceSeconds) return false;
    const expected = Buffer.from(sign(secret, id, timestamp, body).slice(3));
    let ok = false;
    for (const s of sigs.split(' ')) {
      if (!s.startsWith('v1,')) continue;
      const given = Buffer.from(s.slice(3));
      // Lengths are public (a SHA-256 MAC is always 44 base64 characters); the bytes are compared in constant time.
      if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
    }
    return ok;
  } catch {
    return false;
  }
}

// --- the secret at rest -----------------------------------------------------------------------------------------

const WRAP_VERSION = 1;
const aad = (id: string) => Buffer.from(`smoothcast-webhook-secret:${WRAP_VERSION}:${id}`);

/** `v1.<iv>.<ciphertext+tag>` (base64url): the secret's 32 bytes wrapped for webhook `id`. */
export function wrapSecret(master: Buffer, id: string, key: Buffer): string {
  if (master.length !== 32) throw new SmoothcastError('INTERNAL', 'the master key is 32 bytes');
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', master, iv);
  c.setAAD(aad(id));
  const body = Buffer.concat([c.update(key), c.final(), c.getAuthTag()]);
  return `v${WRAP_VERSION}.${iv.toString('base64url')}.${body.toString('base64url')}`;
}

/** Inverse of wrapSecret; a wrong master key, another webhook or a damaged value → INTERNAL. */
export function unwrapSecret(master: Buffer, id: string, wrapped: string): Buffer {
  const m = /^v1\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{64})$/.exec(wrapped);
  if (!m) throw new SmoothcastError('INTERNAL', 'not a wrapped webhook secret');
  const body = Buffer.from(m[2]!, 'base64url');
  try {
    const d = createDecipheriv('aes-256-gcm', master, Buffer.from(m[1]!, 'base64url'));
    d.setAAD(aad(id));
    d.setAuthTag(body.subarray(32));
    return Buffer.concat([d.update(body.subarray(0, 32)), d.final()]);
  } catch (err) {
    throw new SmoothcastError('INTERNAL', `the secret of webhook ${id} does not unwrap with this master key`, {
      cause: err,
    });
  }
}

// --- validation ---------------------------------------------------------------------------------------------------

/** A webhook URL: http(s), a host, no credentials, at most MAX_URL_LENGTH characters. */
export function webhookUrl(raw: unknown): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_URL_LENGTH) {
    throw new SmoothcastError(
      'WEBHOOK_URL_INVALID',
      `url must be an http(s) URL of at most ${MAX_URL_LENGTH} characters`,
    );
  }
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new SmoothcastError('WEBHOOK_URL_INVALID', `not a URL: ${JSON.stringify(raw.slice(0, 100))}`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '') {
    throw new SmoothcastError('WEBHOOK_URL_INVALID', 'url must be http:// or https:// with a host');
  }
  if (u.username !== '' || u.password !== '') {
    throw new SmoothcastError('WEBHOOK_URL_INVALID', 'url must not hold credentials: the signature authenticates us');
  }
  if (u.href.length > MAX_URL_LENGTH) {
    throw new SmoothcastError('WEBHOOK_URL_INVALID', `url must be at most ${MAX_URL_LENGTH} characters`);
  }
  return u.href;
}

/** A non-empty list of subscribable events (duplicates dropped, in the order of WEBHOOK_EVENTS). */
export function webhookEvents(raw: unknown): WebhookEvent[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new SmoothcastError('BAD_REQUEST', `events must be a non-empty array of: ${WEBHOOK_EVENTS.join(', ')}`);
  }
  for (const e of raw) {
    if (!isWebhookEvent(e)) {
      throw new SmoothcastError(
        'BAD_REQUEST',
        `unknown event ${JSON.stringify(e)}: events are ${WEBHOOK_EVENTS.join(', ')}`,
      );
    }
  }
  return WEBHOOK_EVENTS.filter((e) => raw.includes(e));
}

function newWebhookId(): string {
  return randomBase32(16, 'wh_');
}

/** `msg_` + 26 base32 characters (130 random bits). */
function newMessageId(): string {
  return randomBase32(26, 'msg_');
}

// --- repository and delivery loop --------------------------------------------------------------------------------

interface Claimed {
  id: string;
  webhookId: string;
  url: string;
  secretWrapped: string;
  payload: string;
  attempts: number;
}

export class Webhooks {
  readonly #db: Db;
  readonly #master: Buffer;
  readonly #log: Logger;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #delays: readonly number[];
  readonly #timeoutMs: number;
  readonly #maxSleepMs: number;
  readonly #concurrency: number;
  #running = false;
  #timer: NodeJS.Timeout | null = null;
  /** A tick (claim, then the next wake-up) is running; a poke meanwhile makes it run again at once. */
  #ticking = false;
  #again = false;
  /** The last tick, for close() to wait on (its claimed deliveries become attempts in flight). */
  #tickDone: Promise<void> = Promise.resolve();
  readonly #inFlight = new Set<Promise<void>>();
  /** Aborts the attempts in flight when close() is called. */
  #closing = new AbortController();

  constructor(o: WebhooksOptions) {
    if (o.master.length !== 32) throw new SmoothcastError('CONFIG_INVALID', 'the master key is 32 bytes');
    this.#db = o.db;
    this.#master = o.master;
    this.#log = o.log;
    this.#fetch = o.fetch ?? fetch;
    this.#now = o.now ?? Date.now;
    this.#delays = o.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
    this.#timeoutMs = o.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
    this.#maxSleepMs = o.maxSleepMs ?? DEFAULT_MAX_SLEEP_MS;
    this.#concurrency = Math.max(1, o.concurrency ?? 8);
    for (const d of this.#delays) {
      if (!Number.isFinite(d) || d < 0) throw new SmoothcastError('CONFIG_INVALID', 'retry delays are ms ≥ 0');
    }
  }

  async create(input: { url: unknown; events: unknown }): Promise<CreatedWebhook> {
    const url = webhookUrl(input.url);
    const events = webhookEvents(input.events);
    const id = newWebhookId();
    const key = randomBytes(32);
    const createdAt = this.#now();
    const wrapped = wrapSecret(this.#master, id, key);
    await this.#db.run(
      sql`INSERT INTO webhooks (id, url, events, secret_wrapped, created_at)
          VALUES (${id}, ${url}, ${JSON.stringify(events)}, ${wrapped}, ${createdAt})`,
    );
    return { id, url, events, secret: SECRET_PREFIX + key.toString('base64'), createdAt };
  }

  /** Oldest first; never the secrets. */
  async list(): Promise<Webhook[]> {
    const order = insertionOrder(this.#db.dialect);
    return (await this.#db.all(sql`SELECT * FROM webhooks ORDER BY created_at, ${order}`)).map(toWebhook);
  }

  async get(id: string): Promise<Webhook | null> {
    if (typeof id !== 'string' || !WEBHOOK_ID.test(id)) return null;
    const row = await this.#db.get(sql`SELECT * FROM webhooks WHERE id = ${id}`);
    return row === undefined ? null : toWebhook(row);
  }

  /** Deletes the webhook, its secret and its deliveries (pending ones are not sent). False when it did not exist. */
  async delete(id: string): Promise<boolean> {
    if (typeof id !== 'string' || !WEBHOOK_ID.test(id)) return false;
    return (await this.#db.run(sql`DELETE FROM webhooks WHERE id = ${id}`)) === 1;
  }

  /** The webhook's deliveries, newest first (WEBHOOK_NOT_FOUND for an unknown webhook). */
  async deliveries(webhookId: string, limit = 50): Promise<Delivery[]> {
    await this.#mustGet(webhookId);
    // created_at is unique per webhook (emit makes it strictly increase), so it alone orders them; id only makes
    // the order total for rows written before that.
    const rows = await this.#db.all(
      sql`SELECT * FROM webhook_deliveries WHERE webhook_id = ${webhookId} ORDER BY created_at DESC, id DESC
          LIMIT ${Math.max(1, Math.min(1000, Math.trunc(limit)))}`,
    );
    return rows.map(toDelivery);
  }

  async delivery(id: string): Promise<Delivery | null> {
    if (typeof id !== 'string' || !DELIVERY_ID.test(id)) return null;
    const row = await this.#db.get(sql`SELECT * FROM webhook_deliveries WHERE id = ${id}`);
    return row === undefined ? null : toDelivery(row);
  }

  /**
   * One pending delivery per enabled webhook subscribed to `event` (or, with `webhookId`, to that webhook only), in
   * one transaction; the body `{ type, timestamp, data }` is serialized once here and sent as is on every attempt.
   * Returns the deliveries' message ids. `data` must be JSON.
   */
  async emit(event: InternalEvent, data: unknown, options: { webhookId?: string } = {}): Promise<string[]> {
    if (!(INTERNAL_EVENTS as readonly string[]).includes(event)) {
      throw new SmoothcastError('INTERNAL', `unknown webhook event ${JSON.stringify(event)}`);
    }
    const now = this.#now();
    const payload = JSON.stringify({ type: event, timestamp: new Date(now).toISOString(), data: data ?? null });
    // Database work only: on PostgreSQL the callback may run again (the message ids drawn in a rolled-back run are
    // never seen; only the committed run's are returned).
    const ids = await this.#db.write(async () => {
      const hooks = (
        options.webhookId === undefined
          ? await this.list()
          : [await this.get(options.webhookId)].filter((h) => h !== null)
      ).filter(
        // webhook.test is nobody's subscription: it goes only to the webhook named.
        (h) =>
          h.disabledAt === null &&
          (event === 'webhook.test' ? options.webhookId !== undefined : h.events.includes(event)),
      );
      const out: string[] = [];
      for (const h of hooks) {
        const id = newMessageId();
        // created_at strictly increases per webhook (max(now, last + 1)), so the newest-first listing needs no
        // insertion-order column (PostgreSQL's webhook_deliveries has none, SQLite's rowid is not portable).
        const last = await this.#db.get(
          sql`SELECT max(created_at) AS t FROM webhook_deliveries WHERE webhook_id = ${h.id}`,
        );
        const createdAt = last === undefined || last.t === null ? now : Math.max(now, int(last, 't') + 1);
        await this.#db.run(
          sql`INSERT INTO webhook_deliveries (id, webhook_id, event, payload, status, attempts, next_attempt_at,
                created_at)
              VALUES (${id}, ${h.id}, ${event}, ${payload}, 'pending', 0, ${now}, ${createdAt})`,
        );
        out.push(id);
      }
      return out;
    });
    if (ids.length > 0) this.poke();
    return ids;
  }

  /** Sends a `webhook.test` event to this webhook only; its delivery. */
  async test(webhookId: string): Promise<Delivery> {
    const hook = await this.#mustGet(webhookId);
    const [id] = await this.emit('webhook.test', { webhookId: hook.id, url: hook.url }, { webhookId: hook.id });
    return (await this.delivery(id!))!;
  }

  /** Starts the delivery loop (idempotent). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#closing = new AbortController();
    this.#schedule(0);
  }

  /** Runs the loop now instead of at its next wake-up (after an emit, also from another component). */
  poke(): void {
    if (!this.#running) return;
    if (this.#ticking) this.#again = true;
    else this.#schedule(0);
  }

  /**
   * Stops the loop. Attempts in flight are aborted and put back as due (not counted), so the next start sends them
   * again; returns when their rows are written.
   */
  async close(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#closing.abort();
    // A claim in progress: its deliveries become attempts (aborted at once, so put back) before we wait for them.
    await this.#tickDone;
    await Promise.allSettled([...this.#inFlight]);
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        this.#tickDone = this.#tick();
      },
      Math.max(0, ms),
    );
    this.#timer.unref();
  }

  /** Claims what is due and starts its attempts (outside any transaction), then sleeps until the next is due. */
  async #tick(): Promise<void> {
    if (!this.#running) return;
    this.#ticking = true;
    let sleep = this.#maxSleepMs;
    try {
      const free = this.#concurrency - this.#inFlight.size;
      if (free > 0) {
        for (const d of await this.#claim(free)) {
          const p: Promise<void> = this.#attempt(d)
            .catch((err) => this.#log('webhook attempt failed to record', { delivery: d.id, error: String(err) }))
            .finally(() => {
              this.#inFlight.delete(p);
              this.poke();
            });
          this.#inFlight.add(p);
        }
      }
      // Full: a finishing attempt pokes. Otherwise sleep until the next due delivery (capped).
      if (this.#inFlight.size < this.#concurrency) {
        const next = await this.#nextDue();
        if (next !== null) sleep = Math.min(this.#maxSleepMs, Math.max(0, next - this.#now()));
      }
    } catch (err) {
      this.#log('webhook delivery loop error', { error: String(err) });
    } finally {
      this.#ticking = false;
    }
    const again = this.#again;
    this.#again = false;
    this.#schedule(again ? 0 : sleep);
  }

  /**
   * Takes up to `n` due deliveries in one transaction: counts the attempt and sets a lease past the attempt's
   * timeout (another process's claim skips them until it ends). Only database work: the HTTP requests are made
   * after it commits, and the results written by separate statements.
   */
  #claim(n: number): Promise<Claimed[]> {
    const now = this.#now();
    const lease = now + this.#timeoutMs + 30_000;
    return this.#db.write(async () => {
      const rows = await this.#db.all(
        sql`SELECT d.id, d.webhook_id, d.payload, d.attempts, w.url, w.secret_wrapped
            FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
            WHERE d.status = 'pending' AND d.next_attempt_at <= ${now} AND w.disabled_at IS NULL
            ORDER BY d.next_attempt_at, d.created_at, d.id LIMIT ${n}`,
      );
      if (rows.length === 0) return [];
      await this.#db.run(
        sql`UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ${lease}
            WHERE id IN (${sql.join(rows.map((r) => text(r, 'id')))})`,
      );
      return rows.map((r) => ({
        id: text(r, 'id'),
        webhookId: text(r, 'webhook_id'),
        url: text(r, 'url'),
        secretWrapped: text(r, 'secret_wrapped'),
        payload: text(r, 'payload'),
        attempts: int(r, 'attempts') + 1,
      }));
    });
  }

  async #nextDue(): Promise<number | null> {
    const row = await this.#db.get(
      sql`SELECT min(d.next_attempt_at) AS t FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
          WHERE d.status = 'pending' AND w.disabled_at IS NULL`,
    );
    return row === undefined || row.t === null ? null : int(row, 't');
  }

  /** One HTTP attempt of a claimed delivery (no transaction is open while it runs), then its result recorded. */
  async #attempt(d: Claimed): Promise<void> {
    let status: number | null = null;
    let error: string | null = null;
    try {
      const key = unwrapSecret(this.#master, d.webhookId, d.secretWrapped);
      const timestamp = Math.floor(this.#now() / 1000);
      const res = await this.#fetch(d.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'smoothcast-webhooks/1',
          'webhook-id': d.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': sign(key, d.id, timestamp, d.payload),
        },
        body: d.payload,
        // Redirects are not followed: a webhook URL is where the admin said, and a 3xx is an error to fix.
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(this.#timeoutMs), this.#closing.signal]),
      });
      status = res.status;
      if (status < 200 || status > 299) error = `HTTP ${status}${await snippet(res)}`;
      else await res.body?.cancel().catch(() => {});
    } catch (err) {
      if (this.#closing.signal.aborted) {
        // Shutting down: not the receiver's fault; due again at the next start, the attempt not counted.
        await this.#db.run(
          sql`UPDATE webhook_deliveries
              SET attempts = ${greatest(this.#db.dialect, sql`attempts - 1`, 0)}, next_attempt_at = ${this.#now()}
              WHERE id = ${d.id} AND status = 'pending'`,
        );
        return;
      }
      error = describe(err, this.#timeoutMs);
    }
    const now = this.#now();
    if (error === null) {
      await this.#db.run(
        sql`UPDATE webhook_deliveries SET status = 'delivered', last_status = ${status}, last_error = NULL,
              next_attempt_at = NULL, delivered_at = ${now}
            WHERE id = ${d.id}`,
      );
      return;
    }
    const delay = this.#delays[d.attempts - 1];
    if (delay === undefined) {
      this.#log('webhook delivery failed', { delivery: d.id, webhook: d.webhookId, attempts: d.attempts, error });
    }
    await this.#db.run(
      sql`UPDATE webhook_deliveries
          SET status = ${delay === undefined ? 'failed' : 'pending'}, last_status = ${status}, last_error = ${error},
            next_attempt_at = ${delay === undefined ? null : now + delay}
          WHERE id = ${d.id}`,
    );
  }

  async #mustGet(id: string): Promise<Webhook> {
    const h = await this.get(id);
    if (!h) throw new SmoothcastError('WEBHOOK_NOT_FOUND', `no webhook ${id}`);
    return h;
  }
}

/** `: <first 200 characters of the answer>` (control characters dropped), or ''. */
async function snippet(res: Response): Promise<string> {
  try {
    const reader = res.body?.getReader();
    if (!reader) return '';
    const chunk = await reader.read();
    await reader.cancel().catch(() => {});
    if (chunk.done || !chunk.value) return '';
    const t = Buffer.from(chunk.value.subarray(0, 800))
      .toString('utf8')
      .replace(/[\u0000-\u001f\u007f]+/g, ' ')
      .trim()
      .slice(0, 200);
    return t === '' ? '' : `: ${t}`;
  } catch {
    return '';
  }
}

function describe(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return `timed out after ${timeoutMs} ms`;
  }
  const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const base = err instanceof Error ? err.message : String(err);
  const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : '';
  return (detail ? `${base}: ${detail}` : base).slice(0, 500);
}

function toWebhook(row: Row): Webhook {
  return {
    id: text(row, 'id'),
    url: text(row, 'url'),
    events: (JSON.parse(text(row, 'events')) as unknown[]).filter(isWebhookEvent),
    createdAt: int(row, 'created_at'),
    disabledAt: row.disabled_at === null ? null : int(row, 'disabled_at'),
  };
}

function toDelivery(row: Row): Delivery {
  const intOrNull = (col: string) => (row[col] === null ? null : int(row, col));
  return {
    id: text(row, 'id'),
    webhookId: text(row, 'webhook_id'),
    event: text(row, 'event') as InternalEvent,
    payload: text(row, 'payload'),
    status: text(row, 'status') as DeliveryStatus,
    attempts: int(row, 'attempts'),
    nextAttemptAt: intOrNull('next_attempt_at'),
    lastStatus: intOrNull('last_status'),
    lastError: textOrNull(row, 'last_error'),
    createdAt: int(row, 'created_at'),
    deliveredAt: intOrNull('delivered_at'),
  };
}

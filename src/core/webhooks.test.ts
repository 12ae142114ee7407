import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { sql } from 'kysely';
import { Webhook as Reference } from 'standardwebhooks';
import { forEachDatabase } from '../../test/helpers/services/databases.ts';
import { type Db, openDatabase } from './db/database.ts';
import { SmoothcastError } from './errors.ts';
import {
  type Delivery,
  sign,
  unwrapSecret,
  verify,
  WEBHOOK_EVENTS,
  WEBHOOK_ID,
  Webhooks,
  type WebhooksOptions,
  webhookEvents,
  webhookUrl,
  wrapSecret,
} from './webhooks.ts';

const isCode = (code: string) => (err: unknown) => err instanceof SmoothcastError && err.code === code;

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real HTTP receiver on port 0; `answer` decides each response (leave it unanswered to hang). */
async function receiver(answer: (req: Received, res: ServerResponse, nth: number) => void) {
  const got: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      got.push(r);
      answer(r, res, got.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/smoothcast`;
  return {
    url,
    got,
    async close() {
      server.closeAllConnections();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async [Symbol.asyncDispose]() {
      await this.close();
    },
  };
}

/** Polls `fn` until it returns a truthy value; fails with `what` after the deadline. */
async function until<T>(
  fn: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  what: string,
  deadlineMs = 15_000,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const settled = (w: Webhooks, id: string) => async () => {
  const d = await w.delivery(id);
  return d && d.status !== 'pending' ? d : null;
};

function headersOf(r: Received): Record<string, string> {
  return {
    'webhook-id': String(r.headers['webhook-id']),
    'webhook-timestamp': String(r.headers['webhook-timestamp']),
    'webhook-signature': String(r.headers['webhook-signature']),
  };
}

/** Every text or blob value in every table of the database (each engine's catalog lists the tables). */
async function everyValue(db: Db): Promise<{ table: string; column: string; value: string | Uint8Array }[]> {
  const out: { table: string; column: string; value: string | Uint8Array }[] = [];
  const tables =
    db.dialect === 'sqlite'
      ? await db.all(sql`SELECT name FROM sqlite_master WHERE type = 'table'`)
      : await db.all(
          sql`SELECT table_name AS name FROM information_schema.tables
              WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`,
        );
  assert.ok(
    tables.some((t) => t.name === 'webhook_deliveries'),
    'the scan sees the catalog',
  );
  for (const t of tables) {
    const table = String(t.name);
    for (const row of await db.all(sql`SELECT * FROM ${sql.table(table)}`)) {
      for (const [column, value] of Object.entries(row)) {
        if (typeof value === 'string' || value instanceof Uint8Array) out.push({ table, column, value });
      }
    }
  }
  return out;
}

test('sign agrees with the reference; stale replays, future timestamps and tampered bodies are refused', () => {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const ref = new Reference(secret);
  const body = JSON.stringify({ type: 'asset.ready', timestamp: new Date().toISOString(), data: { a: 1 } });
  const now = Math.floor(Date.now() / 1000);
  assert.equal(sign(secret, 'msg_x', now, body), ref.sign('msg_x', new Date(now * 1000), body));

  // A message captured 10 minutes ago, replayed now with its then-valid signature.
  const old = now - 600;
  const stale = {
    'webhook-id': 'msg_x',
    'webhook-timestamp': String(old),
    'webhook-signature': sign(secret, 'msg_x', old, body),
  };
  assert.equal(verify(secret, stale, body, { now: old * 1000 }), true, 'valid when it was sent');
  assert.equal(verify(secret, stale, body), false);
  assert.equal(verify(secret, stale, body, { now: () => Date.now() }), false);
  assert.throws(() => ref.verify(body, stale), /too old/);
  // Within a wider tolerance the receiver chose, it passes.
  assert.equal(verify(secret, stale, body, { toleranceSeconds: 900 }), true);

  const future = now + 600;
  const early = {
    'webhook-id': 'msg_x',
    'webhook-timestamp': String(future),
    'webhook-signature': sign(secret, 'msg_x', future, body),
  };
  assert.equal(verify(secret, early, body), false);
  assert.throws(() => ref.verify(body, early), /too new/);

  const fresh = {
    'webhook-id': 'msg_x',
    'webhook-timestamp': String(now),
    'webhook-signature': sign(secret, 'msg_x', now, body),
  };
  assert.equal(verify(secret, fresh, body), true);
  const tampered = body.replace('"a":1', '"a":2');
  assert.equal(verify(secret, fresh, tampered), false);
  assert.throws(() => ref.verify(tampered, fresh), /No matching signature/);
  // Another message id or timestamp under the same signature.
  assert.equal(verify(secret, { ...fresh, 'webhook-id': 'msg_y' }, body), false);
  assert.equal(verify(secret, { ...fresh, 'webhook-timestamp': String(now - 1) }, body), false);
  // Several signatures (key rotation): one match is enough; unknown versions are skipped.
  const multi = { ...fresh, 'webhook-signature': `v2,abc v1,${'A'.repeat(43)}= ${fresh['webhook-signature']}` };
  assert.equal(verify(secret, multi, body), true);
  // Malformed input is false, never an exception.
  assert.equal(verify(secret, { ...fresh, 'webhook-signature': 'v1,short' }, body), false);
  assert.equal(verify(secret, { ...fresh, 'webhook-timestamp': '12e3' }, body), false);
  assert.equal(verify(secret, { 'webhook-id': 'msg_x' }, body), false);
  assert.equal(verify('whsec_not base64!', fresh, body), false);
  assert.throws(() => sign('whsec_', 'msg_x', now, body), isCode('BAD_REQUEST'));
});

forEachDatabase('webhooks', (t) => {
  async function setup(options: Partial<WebhooksOptions> = {}, target?: string) {
    const db = await openDatabase(target ?? (await t.target()));
    const master = options.master ?? randomBytes(32);
    const logs: { msg: string; extra?: Record<string, unknown> }[] = [];
    const webhooks = new Webhooks({
      db,
      master,
      log: (msg, extra) => logs.push({ msg, extra }),
      retryDelaysMs: [20, 20],
      maxSleepMs: 50,
      ...options,
    });
    return {
      db,
      master,
      logs,
      webhooks,
      async [Symbol.asyncDispose]() {
        await webhooks.close();
        await db.close();
      },
    };
  }

  test('a delivery arrives signed: the reference standardwebhooks and our verify accept it', async () => {
    await using rx = await receiver((_r, res) => res.writeHead(204).end());
    await using s = await setup();
    const hook = await s.webhooks.create({ url: rx.url, events: ['asset.ready', 'asset.failed'] });
    assert.match(hook.id, WEBHOOK_ID);
    assert.match(hook.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(Buffer.from(hook.secret.slice(6), 'base64').length, 32);
    s.webhooks.start();
    const [id] = await s.webhooks.emit('asset.ready', { assetId: 'a1', title: 'Café ☕' });
    assert.ok(id);
    const d = await until(settled(s.webhooks, id), 'the delivery');
    assert.equal(d.status, 'delivered');
    assert.equal(d.attempts, 1);
    assert.equal(d.lastStatus, 204);
    assert.equal(d.lastError, null);
    assert.equal(rx.got.length, 1);
    const r = rx.got[0]!;
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['webhook-id'], id);
    assert.match(String(r.headers['webhook-timestamp']), /^\d+$/);
    assert.ok(Math.abs(Number(r.headers['webhook-timestamp']) - Date.now() / 1000) < 300);
    assert.match(String(r.headers['webhook-signature']), /^v1,[A-Za-z0-9+/]{43}=$/);
    assert.equal(r.body, d.payload, 'the stored payload is the exact body sent');
    const parsed = JSON.parse(r.body) as { type: string; timestamp: string; data: unknown };
    assert.equal(parsed.type, 'asset.ready');
    assert.equal(new Date(parsed.timestamp).toISOString(), parsed.timestamp);
    assert.deepEqual(parsed.data, { assetId: 'a1', title: 'Café ☕' });

    assert.deepEqual(new Reference(hook.secret).verify(r.body, headersOf(r)), parsed);
    assert.equal(verify(hook.secret, r.headers, r.body), true);
    assert.equal(verify(hook.secret, new Headers(headersOf(r)), Buffer.from(r.body)), true);
    // Another secret does not verify.
    const other = `whsec_${randomBytes(32).toString('base64')}`;
    assert.equal(verify(other, r.headers, r.body), false);
    assert.throws(() => new Reference(other).verify(r.body, headersOf(r)));
  });

  test('a receiver answering 500 twice then 200: delivered on the 3rd attempt, same id and body each time', async () => {
    await using rx = await receiver((_r, res, nth) =>
      res.writeHead(nth <= 2 ? 500 : 200).end(nth <= 2 ? 'boom\n' : 'ok'),
    );
    await using s = await setup({ retryDelaysMs: [10, 10, 10] });
    const hook = await s.webhooks.create({ url: rx.url, events: ['upload.completed'] });
    s.webhooks.start();
    const [id] = await s.webhooks.emit('upload.completed', { uploadId: 'u1' });
    const d = await until(settled(s.webhooks, id!), 'the delivery');
    assert.equal(d.status, 'delivered');
    assert.equal(d.attempts, 3);
    assert.equal(d.lastStatus, 200);
    assert.equal(d.lastError, null);
    assert.ok(d.deliveredAt !== null);
    assert.equal(rx.got.length, 3);
    for (const r of rx.got) {
      assert.equal(r.headers['webhook-id'], id);
      assert.equal(r.body, rx.got[0]!.body);
      assert.equal(verify(hook.secret, r.headers, r.body), true, 'each attempt is signed over its own timestamp');
    }
  });

  test('non-2xx answers are recorded; after the last retry the delivery is failed', async () => {
    await using rx = await receiver((_r, res) =>
      res.writeHead(503, { 'content-type': 'text/plain' }).end('down for\nmaintenance'),
    );
    await using s = await setup({ retryDelaysMs: [5, 5] });
    await s.webhooks.create({ url: rx.url, events: ['live.started'] });
    s.webhooks.start();
    const [id] = await s.webhooks.emit('live.started', { streamId: 'l1' });
    const d = await until(settled(s.webhooks, id!), 'the delivery to fail');
    assert.equal(d.status, 'failed');
    assert.equal(d.attempts, 3);
    assert.equal(d.lastStatus, 503);
    assert.equal(d.lastError, 'HTTP 503: down for maintenance');
    assert.equal(d.nextAttemptAt, null);
    assert.equal(rx.got.length, 3);
    assert.ok(s.logs.some((l) => l.msg === 'webhook delivery failed' && l.extra?.delivery === id));
  });

  test('a receiver that never answers: each attempt times out, then failed with the error recorded', async () => {
    await using rx = await receiver(() => {}); // reads the request, never answers
    await using s = await setup({ attemptTimeoutMs: 100, retryDelaysMs: [10, 10] });
    await s.webhooks.create({ url: rx.url, events: ['live.stopped'] });
    s.webhooks.start();
    const [id] = await s.webhooks.emit('live.stopped', { streamId: 'l1' });
    const d = await until(settled(s.webhooks, id!), 'the delivery to fail');
    assert.equal(d.status, 'failed');
    assert.equal(d.attempts, 3);
    assert.equal(d.lastStatus, null);
    assert.equal(d.lastError, 'timed out after 100 ms');
    assert.equal(rx.got.length, 3);
  });

  test('a refused connection is an error recorded and retried', async () => {
    await using rx = await receiver((_r, res) => res.end());
    const url = rx.url;
    await rx.close(); // nothing listens there any more
    await using s = await setup({ retryDelaysMs: [5] });
    await s.webhooks.create({ url, events: ['asset.deleted'] });
    s.webhooks.start();
    const [id] = await s.webhooks.emit('asset.deleted', { assetId: 'a1' });
    const d = await until(settled(s.webhooks, id!), 'the delivery to fail');
    assert.equal(d.status, 'failed');
    assert.equal(d.attempts, 2);
    assert.equal(d.lastStatus, null);
    assert.match(d.lastError ?? '', /ECONNREFUSED/);
  });

  test('deliveries survive a restart: a pending delivery is sent by the next process', async () => {
    await using rx = await receiver((_r, res) => res.writeHead(200).end());
    const file = await t.target();
    const master = randomBytes(32);
    let id: string;
    let secret: string;
    {
      await using s = await setup({ master }, file); // never started: the process "stops" with the delivery pending
      secret = (await s.webhooks.create({ url: rx.url, events: ['asset.ready'] })).secret;
      id = (await s.webhooks.emit('asset.ready', { assetId: 'a1' }))[0]!;
      assert.equal((await s.webhooks.delivery(id))?.status, 'pending');
    }
    assert.equal(rx.got.length, 0);
    await using s = await setup({ master }, file);
    s.webhooks.start();
    const d = await until(settled(s.webhooks, id), 'the delivery after the restart');
    assert.equal(d.status, 'delivered');
    assert.equal(rx.got.length, 1);
    assert.equal(rx.got[0]!.headers['webhook-id'], id);
    assert.equal(verify(secret, rx.got[0]!.headers, rx.got[0]!.body), true);
  });

  test('close() during an attempt puts it back as due, not counted; the next start sends it', async () => {
    let hang = true;
    await using rx = await receiver((_r, res) => {
      if (!hang) res.writeHead(200).end();
    });
    const file = await t.target();
    const master = randomBytes(32);
    let id: string;
    {
      await using s = await setup({ master, attemptTimeoutMs: 60_000 }, file);
      await s.webhooks.create({ url: rx.url, events: ['live.shutdown'] });
      s.webhooks.start();
      id = (await s.webhooks.emit('live.shutdown', { streamId: 'l1' }))[0]!;
      await until(() => rx.got.length === 1, 'the first attempt to arrive');
      await s.webhooks.close();
      const d = (await s.webhooks.delivery(id))!;
      assert.equal(d.status, 'pending');
      assert.equal(d.attempts, 0);
    }
    hang = false;
    await using s = await setup({ master }, file);
    s.webhooks.start();
    const d = await until(settled(s.webhooks, id), 'the delivery after the restart');
    assert.equal(d.status, 'delivered');
    assert.equal(d.attempts, 1);
    assert.equal(rx.got.length, 2);
    assert.equal(rx.got[1]!.headers['webhook-id'], id);
  });

  test('the secret is stored only wrapped by the master key, bound to its webhook', async () => {
    await using rx = await receiver((_r, res) => res.writeHead(200).end());
    await using s = await setup();
    const hook = await s.webhooks.create({ url: rx.url, events: ['asset.ready'] });
    s.webhooks.start();
    const [id] = await s.webhooks.emit('asset.ready', { assetId: 'a1' });
    await until(settled(s.webhooks, id!), 'the delivery');
    const key = Buffer.from(hook.secret.slice('whsec_'.length), 'base64');
    const forms = [
      hook.secret,
      hook.secret.slice(6),
      key.toString('base64url'),
      key.toString('hex'),
      key.toString('latin1'),
    ];
    const values = await everyValue(s.db);
    assert.ok(values.some((v) => v.table === 'webhooks' && v.column === 'secret_wrapped'));
    for (const v of values) {
      const bytes = Buffer.from(v.value);
      for (const f of forms) assert.ok(!String(v.value).includes(f), `${v.table}.${v.column} holds the secret`);
      assert.ok(!bytes.includes(key), `${v.table}.${v.column} holds the key bytes`);
    }
    const wrapped = String(
      (await s.db.get(sql`SELECT secret_wrapped FROM webhooks WHERE id = ${hook.id}`))?.secret_wrapped,
    );
    assert.deepEqual(unwrapSecret(s.master, hook.id, wrapped), key);
    assert.throws(() => unwrapSecret(s.master, 'wh_aaaaaaaaaaaaaaaa', wrapped), isCode('INTERNAL'));
    assert.throws(() => unwrapSecret(randomBytes(32), hook.id, wrapped), isCode('INTERNAL'));
    assert.notEqual(wrapSecret(s.master, hook.id, key), wrapped, 'a fresh IV each time');
    // Nothing but create() answers the secret.
    assert.ok(!JSON.stringify(await s.webhooks.list()).includes(hook.secret.slice(6)));
    assert.ok(!JSON.stringify(await s.webhooks.get(hook.id)).includes(hook.secret.slice(6)));
  });

  test('only subscribed, existing webhooks get deliveries; webhook.test goes to one webhook', async () => {
    await using rx = await receiver((_r, res) => res.writeHead(200).end());
    await using s = await setup();
    const a = await s.webhooks.create({ url: `${rx.url}?a`, events: ['asset.ready'] });
    const b = await s.webhooks.create({ url: `${rx.url}?b`, events: ['asset.failed', 'asset.ready'] });
    assert.deepEqual(await s.webhooks.emit('live.started', { streamId: 'l1' }), []);
    assert.equal((await s.webhooks.emit('asset.failed', { assetId: 'x' })).length, 1);
    assert.equal((await s.webhooks.emit('asset.ready', { assetId: 'x' })).length, 2);
    const count = async (h: string) => (await s.webhooks.deliveries(h, 100)).length;
    assert.equal(await count(a.id), 1);
    assert.equal(await count(b.id), 2);
    assert.deepEqual(
      (await s.webhooks.deliveries(b.id, 100)).map((d: Delivery) => d.event),
      ['asset.ready', 'asset.failed'],
      'newest first',
    );
    assert.deepEqual(await s.webhooks.emit('webhook.test', {}), [], 'nobody subscribes to webhook.test');
    const sample = await s.webhooks.test(a.id);
    assert.equal(sample.event, 'webhook.test');
    assert.equal(sample.webhookId, a.id);
    assert.equal(await count(a.id), 2);
    assert.equal(await count(b.id), 2);
    s.webhooks.start();
    await until(settled(s.webhooks, sample.id), 'the test delivery');
    const sent = rx.got.find((r) => r.headers['webhook-id'] === sample.id)!;
    assert.equal(JSON.parse(sent.body).type, 'webhook.test');
    assert.equal(verify(a.secret, sent.headers, sent.body), true);
    // A deleted webhook takes its deliveries with it and gets no more.
    assert.equal(await s.webhooks.delete(b.id), true);
    assert.equal(await s.webhooks.delete(b.id), false);
    assert.equal(await s.webhooks.get(b.id), null);
    await assert.rejects(s.webhooks.deliveries(b.id, 10), isCode('WEBHOOK_NOT_FOUND'));
    await assert.rejects(s.webhooks.test(b.id), isCode('WEBHOOK_NOT_FOUND'));
    assert.equal((await s.webhooks.emit('asset.failed', {})).length, 0);
    assert.equal(
      Number((await s.db.get(sql`SELECT count(*) AS n FROM webhook_deliveries WHERE webhook_id = ${b.id}`))?.n),
      0,
    );
  });

  test('create validates the URL and the events; list and get never show the secret', async () => {
    await using s = await setup();
    for (const url of [
      'ftp://example.com/x',
      'http://',
      'not a url',
      '/relative',
      'https://user:pw@example.com/',
      `https://example.com/${'a'.repeat(2048)}`,
      42,
      undefined,
    ]) {
      await assert.rejects(
        s.webhooks.create({ url, events: ['asset.ready'] }),
        isCode('WEBHOOK_URL_INVALID'),
        String(url),
      );
    }
    for (const events of [[], ['asset.nope'], ['webhook.test'], 'asset.ready', [1], undefined]) {
      await assert.rejects(
        s.webhooks.create({ url: 'https://example.com/h', events }),
        isCode('BAD_REQUEST'),
        JSON.stringify(events),
      );
    }
    assert.deepEqual(webhookEvents(['live.stopped', 'asset.ready', 'asset.ready']), ['asset.ready', 'live.stopped']);
    assert.equal(webhookUrl('https://Example.COM:8443/h?x=1'), 'https://example.com:8443/h?x=1');
    const h = await s.webhooks.create({ url: 'https://example.com/h', events: [...WEBHOOK_EVENTS] });
    assert.deepEqual(await s.webhooks.list(), [
      { id: h.id, url: 'https://example.com/h', events: [...WEBHOOK_EVENTS], createdAt: h.createdAt, disabledAt: null },
    ]);
    assert.deepEqual(await s.webhooks.get(h.id), (await s.webhooks.list())[0]);
    assert.equal(await s.webhooks.get('nope'), null);
    assert.equal(await s.webhooks.get('wh_aaaaaaaaaaaaaaaa'), null);
  });

  test('emit wakes a sleeping loop; a failed attempt waits its backoff; a throwing fetch is an attempt error', async () => {
    await using rx = await receiver((_r, res) => res.writeHead(500).end());
    const clock = { t: 1_700_000_000_000 };
    // The loop would otherwise sleep a minute: a prompt delivery shows that emit pokes it.
    await using s = await setup({ now: () => clock.t, maxSleepMs: 60_000, retryDelaysMs: [90_000] });
    await s.webhooks.create({ url: rx.url, events: ['asset.ready'] });
    s.webhooks.start();
    const [id] = await s.webhooks.emit('asset.ready', {});
    const d = await until(async () => {
      const x = await s.webhooks.delivery(id!);
      return x && x.lastStatus !== null ? x : null;
    }, 'the first attempt');
    assert.equal(d.status, 'pending');
    assert.equal(d.attempts, 1);
    assert.equal(d.lastError, 'HTTP 500');
    assert.equal(d.nextAttemptAt, clock.t + 90_000);
    assert.equal(rx.got.length, 1);
    assert.equal(rx.got[0]!.headers['webhook-timestamp'], String(clock.t / 1000));
    // The loop has gone back to sleep (a minute, the retry being further away); a new event wakes it.
    await new Promise((r) => setTimeout(r, 50));
    const [later] = await s.webhooks.emit('asset.ready', { again: true });
    await until(() => rx.got.some((r) => r.headers['webhook-id'] === later), 'the second event');

    await using u = await setup({
      fetch: () => {
        throw new TypeError('no network here');
      },
    });
    await u.webhooks.create({ url: rx.url, events: ['asset.ready'] });
    u.webhooks.start();
    const [id2] = await u.webhooks.emit('asset.ready', {});
    const e = await until(settled(u.webhooks, id2!), 'the delivery to fail');
    assert.equal(e.status, 'failed');
    assert.equal(e.lastError, 'no network here');
  });

  test('no request is made inside a transaction: the claim is committed before, the result written after', async () => {
    const target = await t.target();
    // Another connection sees only what was committed.
    await using watcher = await setup({}, target);
    const seen: { attempts: number; status: string }[] = [];
    await using s = await setup(
      {
        fetch: async () => {
          const row = await watcher.db.get(sql`SELECT attempts, status FROM webhook_deliveries`);
          seen.push({ attempts: Number(row?.attempts), status: String(row?.status) });
          return new Response(null, { status: 204 });
        },
      },
      target,
    );
    await s.webhooks.create({ url: 'https://example.com/h', events: ['asset.ready'] });
    s.webhooks.start();
    const [id] = await s.webhooks.emit('asset.ready', {});
    const d = await until(settled(watcher.webhooks, id!), 'the delivery, seen from the other connection');
    assert.equal(d.status, 'delivered');
    assert.deepEqual(seen, [{ attempts: 1, status: 'pending' }]);
  });

  test('two dispatchers on one database: every message is sent exactly once', async () => {
    await using rx = await receiver((_r, res) => res.writeHead(200).end());
    const target = await t.target();
    await using one = await setup({ concurrency: 3 }, target);
    // PostgreSQL: another connection (another process's pool). SQLite: the same handle (one process, one handle;
    // across processes the write lock serializes the claims the same way).
    await using two =
      t.engine === 'postgres'
        ? await setup({ concurrency: 3, master: one.master }, target)
        : {
            webhooks: new Webhooks({ db: one.db, master: one.master, log: () => {}, maxSleepMs: 50, concurrency: 3 }),
            async [Symbol.asyncDispose]() {
              await this.webhooks.close();
            },
          };
    const other = new Webhooks({ db: one.db, master: one.master, log: () => {} });
    for (const events of [['asset.ready'], ['asset.ready', 'asset.failed'], ['asset.failed']] as const) {
      await one.webhooks.create({ url: rx.url, events: [...events] });
    }
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push(...(await other.emit(i % 2 ? 'asset.ready' : 'asset.failed', { i })));
    assert.equal(ids.length, 16);
    one.webhooks.start();
    two.webhooks.start();
    for (const id of ids) {
      const d = await until(settled(one.webhooks, id), `delivery ${id}`);
      assert.equal(d.status, 'delivered');
      assert.equal(d.attempts, 1);
    }
    const sent = rx.got.map((r) => String(r.headers['webhook-id']));
    assert.equal(sent.length, 16);
    assert.deepEqual([...new Set(sent)].sort(), [...ids].sort());
  });
});

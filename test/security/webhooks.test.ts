// The webhooks API end to end on a bare Fastify app (no auth hook: that is tested on its own; here, that every
// route declares the admin scope), over a real database, with a real receiver for the test event.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Webhook as Reference } from 'standardwebhooks';
import { openDatabase } from '../../src/core/db/database.ts';
import { asSmoothcastError, SmoothcastError } from '../../src/core/errors.ts';
import { verify, Webhooks } from '../../src/core/webhooks.ts';
import { registerWebhookApi } from '../../src/roles/api/webhooks.ts';

const dir = mkdtempSync(join(tmpdir(), 'smoothcast-webhooks-api-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

interface Audited {
  action: string;
  target: string | null;
  detail: Record<string, unknown> | undefined;
}

async function setup() {
  const db = await openDatabase(join(dir, `api${++n}.sqlite`));
  const webhooks = new Webhooks({ db, master: randomBytes(32), log: () => {}, retryDelaysMs: [10], maxSleepMs: 50 });
  const audited: Audited[] = [];
  const routes: { method: string; url: string; scope: unknown }[] = [];
  const app: FastifyInstance = Fastify();
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routes.push({ method, url: r.url, scope: r.config?.scope });
  });
  // As the server's handler: a SmoothcastError keeps its code; Fastify's own 4xx (bad JSON) become BAD_REQUEST.
  app.setErrorHandler((raw, _req, reply) => {
    const status = (raw as { statusCode?: number }).statusCode;
    const err =
      raw instanceof SmoothcastError
        ? raw
        : status && status >= 400 && status < 500
          ? new SmoothcastError('BAD_REQUEST', (raw as Error).message)
          : asSmoothcastError(raw);
    return reply.code(err.status).send({ error: err.toJSON() });
  });
  registerWebhookApi(app, {
    webhooks,
    audit: (_req, action, target, detail) => audited.push({ action, target, detail }),
  });
  await app.ready();
  return {
    app,
    webhooks,
    audited,
    routes,
    async [Symbol.asyncDispose]() {
      await app.close();
      await webhooks.close();
      await db.close();
    },
  };
}

async function until<T>(fn: () => Promise<T | null | undefined | false>, what: string, deadlineMs = 15_000) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function errorOf(res: { statusCode: number; json: () => unknown }): { status: number; code: string; message: string } {
  const body = res.json() as { error: { code: string; message: string } };
  return { status: res.statusCode, code: body.error.code, message: body.error.message };
}

test('every webhook route declares the admin scope', async () => {
  await using s = await setup();
  const mine = s.routes.filter((r) => r.url.startsWith('/api/webhooks'));
  const declared = new Set(mine.map((r) => `${r.method} ${r.url}`));
  for (const r of [
    'GET /api/webhooks',
    'POST /api/webhooks',
    'GET /api/webhooks/:id',
    'DELETE /api/webhooks/:id',
    'GET /api/webhooks/:id/deliveries',
    'POST /api/webhooks/:id/test',
  ]) {
    assert.ok(declared.has(r), `${r} is registered`);
  }
  assert.equal(mine.length, s.routes.length, 'registerWebhookApi adds nothing outside /api/webhooks');
  for (const r of mine) assert.equal(r.scope, 'admin', `${r.method} ${r.url} declares scope admin`);
});

test('create (secret once), list, get, test event delivered and logged, delete; audited', async () => {
  const got: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/in`;
  await using s = await setup();
  s.webhooks.start();

  const created = await s.app.inject({
    method: 'POST',
    url: '/api/webhooks',
    payload: { url, events: ['asset.ready', 'live.started'] },
  });
  assert.equal(created.statusCode, 201);
  const hook = created.json() as { id: string; url: string; events: string[]; secret: string; createdAt: string };
  assert.match(hook.id, /^wh_[a-z2-7]{16}$/);
  assert.match(hook.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.equal(hook.url, url);
  assert.deepEqual(hook.events, ['asset.ready', 'live.started']);
  assert.equal(new Date(hook.createdAt).toISOString(), hook.createdAt);
  assert.deepEqual(s.audited, [
    { action: 'webhook.create', target: hook.id, detail: { url, events: ['asset.ready', 'live.started'] } },
  ]);
  assert.ok(!JSON.stringify(s.audited).includes(hook.secret.slice(6)), 'the audit log never holds the secret');

  const list = await s.app.inject({ method: 'GET', url: '/api/webhooks' });
  assert.equal(list.statusCode, 200);
  assert.deepEqual(list.json(), {
    webhooks: [{ id: hook.id, url, events: hook.events, createdAt: hook.createdAt, disabledAt: null }],
  });
  const one = await s.app.inject({ method: 'GET', url: `/api/webhooks/${hook.id}` });
  assert.equal(one.statusCode, 200);
  assert.deepEqual(one.json(), (list.json() as { webhooks: unknown[] }).webhooks[0]);
  for (const r of [list, one]) assert.ok(!r.body.includes(hook.secret.slice(6)), 'the secret is answered once');

  const empty = await s.app.inject({ method: 'GET', url: `/api/webhooks/${hook.id}/deliveries` });
  assert.deepEqual(empty.json(), { deliveries: [] });

  const sent = await s.app.inject({ method: 'POST', url: `/api/webhooks/${hook.id}/test` });
  assert.equal(sent.statusCode, 202);
  const { delivery } = sent.json() as { delivery: { id: string; event: string; status: string } };
  assert.equal(delivery.event, 'webhook.test');
  assert.match(delivery.id, /^msg_/);

  const log = await until(async () => {
    const r = await s.app.inject({ method: 'GET', url: `/api/webhooks/${hook.id}/deliveries?limit=10` });
    const body = r.json() as { deliveries: Record<string, unknown>[] };
    return body.deliveries[0]?.status === 'delivered' ? body.deliveries : null;
  }, 'the test delivery');
  assert.equal(log.length, 1);
  const d = log[0]!;
  assert.deepEqual(Object.keys(d).sort(), [
    'attempts',
    'createdAt',
    'deliveredAt',
    'event',
    'id',
    'lastError',
    'lastStatus',
    'nextAttemptAt',
    'status',
  ]);
  assert.equal(d.id, delivery.id);
  assert.equal(d.attempts, 1);
  assert.equal(d.lastStatus, 200);
  assert.equal(d.lastError, null);
  assert.equal(d.nextAttemptAt, null);
  assert.equal(typeof d.deliveredAt, 'string');
  assert.ok(!JSON.stringify(log).includes(hook.secret.slice(6)));

  // What arrived verifies with the secret from the creation answer, by the reference and by ours.
  assert.equal(got.length, 1);
  const rx = got[0]!;
  assert.equal(rx.headers['webhook-id'], delivery.id);
  const headers = {
    'webhook-id': String(rx.headers['webhook-id']),
    'webhook-timestamp': String(rx.headers['webhook-timestamp']),
    'webhook-signature': String(rx.headers['webhook-signature']),
  };
  const payload = new Reference(hook.secret).verify(rx.body, headers) as { type: string; data: unknown };
  assert.equal(payload.type, 'webhook.test');
  assert.equal(verify(hook.secret, rx.headers, rx.body), true);

  const del = await s.app.inject({ method: 'DELETE', url: `/api/webhooks/${hook.id}` });
  assert.equal(del.statusCode, 204);
  assert.equal(del.body, '');
  assert.deepEqual(s.audited.at(-1), { action: 'webhook.delete', target: hook.id, detail: { url } });
  const gone = await s.app.inject({ method: 'GET', url: `/api/webhooks/${hook.id}` });
  assert.deepEqual(errorOf(gone).code, 'WEBHOOK_NOT_FOUND');
  assert.deepEqual((await s.app.inject({ method: 'GET', url: '/api/webhooks' })).json(), { webhooks: [] });
  const again = await s.app.inject({ method: 'DELETE', url: `/api/webhooks/${hook.id}` });
  assert.equal(errorOf(again).status, 404);
  assert.equal(s.audited.length, 2, 'a refused delete is not audited');
});

test('bad input: URL → 400 WEBHOOK_URL_INVALID, events and shapes → 400 BAD_REQUEST; nothing created', async () => {
  await using s = await setup();
  const post = (payload: unknown, headers: Record<string, string> = {}) =>
    s.app.inject({
      method: 'POST',
      url: '/api/webhooks',
      headers: { 'content-type': 'application/json', ...headers },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });
  for (const url of [
    'ftp://example.com/hook',
    'javascript:alert(1)',
    'https://',
    'example.com/hook',
    'https://user:secret@example.com/hook',
    `https://example.com/${'x'.repeat(2100)}`,
    42,
    null,
  ]) {
    const e = errorOf(await post({ url, events: ['asset.ready'] }));
    assert.deepEqual([e.status, e.code], [400, 'WEBHOOK_URL_INVALID'], String(url));
  }
  const missingUrl = errorOf(await post({ events: ['asset.ready'] }));
  assert.deepEqual([missingUrl.status, missingUrl.code], [400, 'WEBHOOK_URL_INVALID']);

  for (const events of [[], ['asset.exploded'], ['webhook.test'], 'asset.ready', [null], {}, undefined]) {
    const e = errorOf(await post({ url: 'https://example.com/h', events }));
    assert.deepEqual([e.status, e.code], [400, 'BAD_REQUEST'], JSON.stringify(events));
    assert.match(e.message, /events/);
  }
  const unknownEvent = errorOf(await post({ url: 'https://example.com/h', events: ['asset.exploded'] }));
  assert.match(unknownEvent.message, /asset\.exploded/);

  const extra = errorOf(await post({ url: 'https://example.com/h', events: ['asset.ready'], secret: 'mine' }));
  assert.deepEqual([extra.status, extra.code], [400, 'BAD_REQUEST']);
  assert.match(extra.message, /unknown field secret/);
  for (const body of [[], 'null', '"a string"', '{"url": ']) {
    const e = errorOf(await post(body));
    assert.deepEqual([e.status, e.code], [400, 'BAD_REQUEST'], JSON.stringify(body));
  }
  const noBody = await s.app.inject({ method: 'POST', url: '/api/webhooks' });
  assert.deepEqual([errorOf(noBody).status, errorOf(noBody).code], [400, 'BAD_REQUEST']);
  assert.deepEqual(await s.webhooks.list(), []);
  assert.deepEqual(s.audited, []);
});

test('unknown ids → 404 WEBHOOK_NOT_FOUND, malformed ids → 400 INVALID_ID, bad limit → 400', async () => {
  await using s = await setup();
  const unknown = 'wh_aaaaaaaaaaaaaaaa';
  for (const [method, url] of [
    ['GET', `/api/webhooks/${unknown}`],
    ['DELETE', `/api/webhooks/${unknown}`],
    ['GET', `/api/webhooks/${unknown}/deliveries`],
    ['POST', `/api/webhooks/${unknown}/test`],
  ] as const) {
    const e = errorOf(await s.app.inject({ method, url }));
    assert.deepEqual([e.status, e.code], [404, 'WEBHOOK_NOT_FOUND'], `${method} ${url}`);
  }
  for (const id of [
    'nope',
    "wh_aaaaaaaaaaaaaaa'",
    'WH_AAAAAAAAAAAAAAAA',
    'wh_0000000000000000',
    'wh_aaaaaaaaaaaaaaaa/..%2f',
  ]) {
    const e = errorOf(await s.app.inject({ method: 'GET', url: `/api/webhooks/${encodeURIComponent(id)}` }));
    assert.deepEqual([e.status, e.code], [400, 'INVALID_ID'], id);
  }
  const hook = await s.webhooks.create({ url: 'https://example.com/h', events: ['asset.ready'] });
  for (const limit of ['0', '501', '1.5', 'ten', '']) {
    const e = errorOf(await s.app.inject({ method: 'GET', url: `/api/webhooks/${hook.id}/deliveries?limit=${limit}` }));
    assert.deepEqual([e.status, e.code], [400, 'BAD_REQUEST'], limit);
  }
  await s.webhooks.emit('asset.ready', { n: 1 });
  await s.webhooks.emit('asset.ready', { n: 2 });
  const r = await s.app.inject({ method: 'GET', url: `/api/webhooks/${hook.id}/deliveries?limit=1` });
  assert.equal((r.json() as { deliveries: unknown[] }).deliveries.length, 1);
});

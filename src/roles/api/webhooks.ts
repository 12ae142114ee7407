// The webhooks API (admin only): register a URL for events (the signing secret is answered once, at creation),
// list, inspect, delete, read a webhook's delivery log, and send it a test event. Deliveries themselves run in
// src/core/webhooks.ts.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SmoothcastError } from '../../core/errors.ts';
import { type CreatedWebhook, type Delivery, WEBHOOK_ID, type Webhook, type Webhooks } from '../../core/webhooks.ts';

export interface WebhookJson {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
  disabledAt: string | null;
}

export interface DeliveryJson {
  id: string;
  event: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
  nextAttemptAt: string | null;
}

export interface WebhookApiOptions {
  webhooks: Webhooks;
  /** Records an admin action in the audit log (a promise it returns is awaited before the answer). */
  audit: (req: FastifyRequest, action: string, target: string | null, detail?: Record<string, unknown>) => unknown;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function presentWebhook(h: Webhook): WebhookJson {
  return { id: h.id, url: h.url, events: h.events, createdAt: iso(h.createdAt)!, disabledAt: iso(h.disabledAt) };
}

export function presentDelivery(d: Delivery): DeliveryJson {
  return {
    id: d.id,
    event: d.event,
    status: d.status,
    attempts: d.attempts,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    createdAt: iso(d.createdAt)!,
    deliveredAt: iso(d.deliveredAt),
    nextAttemptAt: d.status === 'pending' ? iso(d.nextAttemptAt) : null,
  };
}

export function registerWebhookApi(app: FastifyInstance, o: WebhookApiOptions): void {
  const mustGet = async (raw: string): Promise<Webhook> => {
    if (!WEBHOOK_ID.test(raw)) throw new SmoothcastError('INVALID_ID', `invalid webhook id ${JSON.stringify(raw)}`);
    const h = await o.webhooks.get(raw);
    if (!h) throw new SmoothcastError('WEBHOOK_NOT_FOUND', `no webhook ${raw}`);
    return h;
  };

  app.get('/api/webhooks', { config: { scope: 'admin' } }, async () => ({
    webhooks: (await o.webhooks.list()).map(presentWebhook),
  }));

  app.post<{ Body: unknown }>('/api/webhooks', { config: { scope: 'admin' } }, async (req, reply) => {
    const body = req.body;
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      throw new SmoothcastError(
        'BAD_REQUEST',
        'the body must be a JSON object { "url": "https://…", "events": [...] }',
      );
    }
    for (const k of Object.keys(body)) {
      if (k !== 'url' && k !== 'events') throw new SmoothcastError('BAD_REQUEST', `unknown field ${k}`);
    }
    const { url, events } = body as { url?: unknown; events?: unknown };
    const h: CreatedWebhook = await o.webhooks.create({ url, events }); // validates both (WEBHOOK_URL_INVALID, BAD_REQUEST)
    await o.audit(req, 'webhook.create', h.id, { url: h.url, events: h.events });
    return reply.code(201).send({
      id: h.id,
      url: h.url,
      events: h.events,
      secret: h.secret,
      createdAt: iso(h.createdAt),
      disabledAt: null,
    });
  });

  app.get<{ Params: { id: string } }>('/api/webhooks/:id', { config: { scope: 'admin' } }, async (req) =>
    presentWebhook(await mustGet(req.params.id)),
  );

  app.delete<{ Params: { id: string } }>('/api/webhooks/:id', { config: { scope: 'admin' } }, async (req, reply) => {
    const h = await mustGet(req.params.id);
    if (!(await o.webhooks.delete(h.id))) throw new SmoothcastError('WEBHOOK_NOT_FOUND', `no webhook ${h.id}`);
    await o.audit(req, 'webhook.delete', h.id, { url: h.url });
    return reply.code(204).send();
  });

  app.get<{ Params: { id: string }; Querystring: { limit?: string } }>(
    '/api/webhooks/:id/deliveries',
    { config: { scope: 'admin' } },
    async (req) => {
      const h = await mustGet(req.params.id);
      const limit = req.query.limit === undefined ? 50 : Number(req.query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
        throw new SmoothcastError('BAD_REQUEST', 'limit must be an integer from 1 to 500');
      }
      return { deliveries: (await o.webhooks.deliveries(h.id, limit)).map(presentDelivery) };
    },
  );

  app.post<{ Params: { id: string } }>('/api/webhooks/:id/test', { config: { scope: 'admin' } }, async (req, reply) => {
    const h = await mustGet(req.params.id);
    return reply.code(202).send({ delivery: presentDelivery(await o.webhooks.test(h.id)) });
  });
}

// GET /metrics (Prometheus exposition) and the per-request HTTP counters behind it.
//
// Requests are counted by route PATTERN (`/v/:id/:rev/:file`), never by the URL asked for: raw URLs carry asset
// ids, segment numbers and tokens, and every distinct label value is a series kept forever by the server and by
// Prometheus. A request no route matched is counted as "(unmatched)".
//
// Access: /metrics is outside /api, so it is not behind the API's scopes or its rate limit; it declares
// `scope: 'public'` like /healthz (the auth hook then only looks at a credential, never refuses). With
// `token` set, it wants `Authorization: Bearer <token>` (compared in constant time) and answers 401 otherwise —
// set one whenever the port is reachable by more than the Prometheus server (the figures name routes, rates
// and sizes, nothing personal).
import type { FastifyInstance } from 'fastify';
import { secretsEqual } from '../../core/auth/secrets.ts';
import type { Metrics } from '../../core/metrics.ts';

export const METRICS_PATH = '/metrics';
export const UNMATCHED_ROUTE = '(unmatched)';

export interface MetricsRouteOptions {
  /** Bearer token a scrape must send; unset or empty: none. */
  token?: string | undefined;
}

/** Call on the root instance: a hook added inside a plugin would only see that plugin's routes (encapsulation). */
export function registerMetrics(app: FastifyInstance, metrics: Metrics, opts: MetricsRouteOptions = {}): void {
  app.addHook('onResponse', (req, reply, done) => {
    // The not-found handler's routeOptions carry no url.
    const route = req.routeOptions.url || UNMATCHED_ROUTE;
    metrics.httpRequest(route, req.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  const token = opts.token || '';
  app.get(METRICS_PATH, { config: { scope: 'public' } }, async (req, reply) => {
    if (token) {
      const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (!m || !secretsEqual(m[1]!, token)) {
        reply.header('www-authenticate', 'Bearer realm="metrics"');
        const error = m
          ? { code: 'AUTH_INVALID', message: 'wrong metrics token' }
          : { code: 'AUTH_REQUIRED', message: 'send Authorization: Bearer <the metrics token>' };
        return reply.code(401).send({ error });
      }
    }
    const body = await metrics.text();
    return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(body);
  });
}

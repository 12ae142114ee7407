// Server-Sent Events the API's followers use (an asset, a live stream): the headers (no caching, no proxy
// buffering, any origin), a reconnect hint, a keep-alive comment every 15 s, and a poll that calls `tick` until it
// ends the stream or the client goes away. One tick at a time: the next is scheduled only after the previous one
// settled (a slow database never piles up polls).
import type { FastifyReply, FastifyRequest } from 'fastify';

export type SseLogger = (msg: string, extra?: Record<string, unknown>) => void;

const stderrLogger: SseLogger = (msg, extra) => {
  console.error(JSON.stringify({ t: new Date().toISOString(), msg, ...extra }));
};

export interface EventSink {
  send(event: string, data: unknown, id?: number): void;
  /** Ends the stream (after a last event). */
  end(): void;
}

export function eventStream(
  req: FastifyRequest,
  reply: FastifyReply,
  pollMs: number,
  /** Where a tick that failed is reported (the stream then ends; the client reconnects). */
  log: SseLogger | undefined,
  tick: (sink: EventSink) => void | Promise<void>,
): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'access-control-allow-origin': '*',
  });
  let closed = false;
  const sink: EventSink = {
    send(event, data, id) {
      if (!closed)
        res.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    },
    end() {
      if (closed) return;
      closed = true;
      clearTimeout(poll);
      clearInterval(keepAlive);
      res.end();
    },
  };
  let poll: NodeJS.Timeout | undefined;
  const check = async () => {
    if (closed) return;
    try {
      await tick(sink);
    } catch (err) {
      (log ?? stderrLogger)('sse poll failed', { url: req.url.split('?')[0], error: String(err) });
      sink.end();
      return;
    }
    if (!closed) poll = setTimeout(() => void check(), pollMs);
  };
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  req.raw.on('close', () => sink.end());
  res.write('retry: 2000\n\n');
  void check();
}

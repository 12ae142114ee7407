// Server-Sent Events the API's followers use (an asset, a live stream): the headers (no caching, no proxy
// buffering, any origin), a reconnect hint, a keep-alive comment every 15 s, and a poll that calls `tick` until it
// ends the stream or the client goes away.
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface EventSink {
  send(event: string, data: unknown, id?: number): void;
  /** Ends the stream (after a last event). */
  end(): void;
}

export function eventStream(
  req: FastifyRequest,
  reply: FastifyReply,
  pollMs: number,
  tick: (sink: EventSink) => void,
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
      clearInterval(poll);
      clearInterval(keepAlive);
      res.end();
    },
  };
  const check = () => {
    if (!closed) tick(sink);
  };
  const poll = setInterval(check, pollMs);
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  req.raw.on('close', () => sink.end());
  res.write('retry: 2000\n\n');
  check();
}

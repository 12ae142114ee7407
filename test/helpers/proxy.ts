// A TCP proxy for fault injection: forwards to a target and, on the first connection that carries more than
// `afterBytes` upstream, either drops it (connection reset mid-request) or stalls it (bytes stop flowing, the
// connection stays open) until released. Later connections pass untouched.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface FaultProxy {
  url: string;
  /** Bytes forwarded client → target so far, over all connections. */
  upstreamBytes(): number;
  /** Resolves once the fault has happened. */
  faulted: Promise<void>;
  close(): Promise<void>;
}

export async function faultProxy(
  target: string,
  opts: { afterBytes: number; action: 'drop' | 'stall' },
): Promise<FaultProxy> {
  const t = new URL(target);
  let total = 0;
  let done = false;
  let fire: () => void = () => {};
  const faulted = new Promise<void>((r) => {
    fire = r;
  });
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(t.port), t.hostname);
    sockets.add(client);
    sockets.add(upstream);
    let seen = 0;
    client.on('data', (chunk: Buffer) => {
      if (!done && seen + chunk.length > opts.afterBytes) {
        done = true;
        const head = chunk.subarray(0, Math.max(0, opts.afterBytes - seen));
        total += head.length;
        upstream.write(head);
        if (opts.action === 'drop') {
          client.destroy();
          // Let the target see what arrived before the reset.
          setTimeout(() => upstream.destroy(), 50);
        } else {
          client.pause();
          client.removeAllListeners('data');
        }
        fire();
        return;
      }
      seen += chunk.length;
      total += chunk.length;
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    upstreamBytes: () => total,
    faulted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

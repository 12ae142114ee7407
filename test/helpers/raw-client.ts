// A raw TCP client for the slowloris and oversized-head tests: it writes `first`, then the next piece of `drip`
// every `everyMs`, and reports what came back and when the server closed the connection.
import { connect } from 'node:net';

export interface RawOutcome {
  response: string;
  /** Milliseconds from connect until the server closed the connection; null if still open at the deadline. */
  closedMs: number | null;
}

export function rawClient(
  port: number,
  first: string | Buffer,
  drip: Iterator<string | Buffer> | null,
  everyMs: number,
  deadlineMs: number,
): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const t0 = performance.now();
    let response = '';
    let timer: NodeJS.Timeout | undefined;
    const deadline = setTimeout(() => {
      clearInterval(timer);
      s.destroy();
      resolve({ response, closedMs: null });
    }, deadlineMs);
    s.on('connect', () => {
      if (first.length) s.write(first);
      if (drip) {
        timer = setInterval(() => {
          const next = drip.next();
          if (next.done) clearInterval(timer);
          else if (!s.destroyed) s.write(next.value);
        }, everyMs);
      }
    });
    s.on('data', (d) => {
      response += d.toString('latin1');
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearInterval(timer);
      clearTimeout(deadline);
      resolve({ response, closedMs: performance.now() - t0 });
    });
  });
}

/** An endless request head for `path`, one character at a time. */
export function* endlessHead(path = '/'): Generator<string> {
  yield* `GET ${path} HTTP/1.1\r\nHost: x\r\n`;
  for (let i = 0; ; i++) yield* `X-Slow-${i}: y\r\n`;
}

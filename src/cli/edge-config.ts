// `smoothcast edge-config`: prints the nginx configuration of an edge cache in front of smoothcast origins. It
// needs no data folder or server configuration, so it parses its own options (main.ts hands it the raw
// arguments).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EdgeConfigError, nginxEdgeConfig } from '../edge/nginx-config.ts';

export const EDGE_USAGE = `usage: smoothcast edge-config --origin URL [--origin URL]… --listen PORT --cache-dir DIR
         [--max-size 10g] [--listen-address ADDR] [--server-name NAME]… [--prefix DIR] [--user USER[:GROUP]]

Prints a complete nginx.conf (nginx 1.22+) for an edge cache in front of the origins; run it with
\`nginx -c FILE\`. See docs/edge.md.

  --origin URL          an origin, http(s)://host:port, no path (repeat for several: load-balanced, failover)
  --listen PORT         the port the edge listens on
  --cache-dir DIR       the cache folder (nginx creates it; its parent must exist; nothing else may live in it)
  --max-size SIZE       the cache's size limit, e.g. 500m, 10g (default 10g)
  --listen-address A    listen on this IPv4/IPv6 address only (default: every IPv4 address)
  --server-name NAME    answer for this Host only (repeatable; default: any)
  --prefix DIR          an existing folder for the pid file, logs and temp folders (default: the cache folder's
                        parent)
  --user USER[:GROUP]   the user nginx's workers run as when started as root
`;

export function edgeConfigCommand(args: string[]): number {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (err) {
    process.stderr.write(`smoothcast edge-config: ${(err as Error).message}\n\n${EDGE_USAGE}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(EDGE_USAGE);
    return 0;
  }
  if (parsed.positionals.length > 0) {
    process.stderr.write(`smoothcast edge-config: unexpected argument ${parsed.positionals[0]}\n\n${EDGE_USAGE}`);
    return 2;
  }
  const missing = (['origin', 'listen', 'cache-dir'] as const).filter((k) => v[k] === undefined);
  if (missing.length > 0) {
    process.stderr.write(`smoothcast edge-config: missing ${missing.map((k) => `--${k}`).join(', ')}\n\n${EDGE_USAGE}`);
    return 2;
  }
  try {
    // Folders given relative to where the command runs, as a shell user expects; nginx needs them absolute.
    const text = nginxEdgeConfig({
      origins: v.origin!,
      listen: v.listen!,
      listenAddress: v['listen-address'],
      serverNames: v['server-name'],
      cacheDir: resolve(v['cache-dir']!),
      maxSize: v['max-size'],
      prefix: v.prefix === undefined ? undefined : resolve(v.prefix),
      user: v.user,
    });
    process.stdout.write(text);
    return 0;
  } catch (err) {
    if (!(err instanceof EdgeConfigError)) throw err;
    process.stderr.write(`smoothcast edge-config: ${err.message}\n`);
    return 2;
  }
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      origin: { type: 'string', multiple: true },
      listen: { type: 'string' },
      'cache-dir': { type: 'string' },
      'max-size': { type: 'string' },
      'listen-address': { type: 'string' },
      'server-name': { type: 'string', multiple: true },
      prefix: { type: 'string' },
      user: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

// The nginx configuration of an edge cache in front of smoothcast origins (`smoothcast edge-config`): a pure
// function from options to the text of a complete nginx.conf for Debian 12's nginx 1.22 (no extra modules).
//
// Every option ends up inside nginx directives, so each is checked against a strict pattern before any text is
// built: nothing a user types can close a directive, open a block or name a variable. docs/edge.md explains the
// configuration part by part.
import { isIP } from 'node:net';
import { posix } from 'node:path';

export interface EdgeConfigOptions {
  /** Origin base URLs: `http(s)://host:port`, no path. */
  origins: readonly string[];
  /** The port the edge listens on. */
  listen: number | string;
  /** The address it listens on (IPv4 or IPv6; default every IPv4 address). */
  listenAddress?: string | undefined;
  /** `server_name`s (default: none, the edge answers for any Host). */
  serverNames?: readonly string[] | undefined;
  /** The cache folder (absolute; nginx creates it, its parent must exist). Nothing else may live in it. */
  cacheDir: string;
  /** The cache's size limit, nginx syntax: 500m, 10g (default 10g). */
  maxSize?: string | undefined;
  /** Where the pid file, logs and temp folders go (absolute; must exist). Default: the cache folder's parent. */
  prefix?: string | undefined;
  /** The user (optionally `user:group`) nginx's workers run as when it is started as root. */
  user?: string | undefined;
}

export class EdgeConfigError extends Error {
  override name = 'EdgeConfigError';
}

interface Origin {
  scheme: 'http' | 'https';
  /** As written in an upstream `server` line: a name, an IPv4 address or a bracketed IPv6 address. */
  host: string;
  port: number;
}

interface Checked {
  origins: Origin[];
  listen: string;
  serverNames: string[];
  cacheDir: string;
  maxSize: string;
  keysZoneMb: number;
  prefix: string;
  user: string | undefined;
}

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
const ORIGIN = /^(https?):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?\/?$/;
// Characters a path may have here: enough for any sensible folder name, none that nginx's parser gives a meaning
// (whitespace, quotes, ; { } $ # \).
const SAFE_PATH = /^\/[A-Za-z0-9._/+@,=~-]*$/;
const SIZE = /^([1-9][0-9]{0,9})([kKmMgG])$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const UNIT = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 } as const;

/** The slice size of ranged downloads: one cache entry (and one origin request) per MiB of file. */
const SLICE = '1m';
/**
 * Average cached object size assumed when sizing the keys zone: segments are ~0.1–2 MB, audio segments and
 * playlists far smaller. nginx keeps about 8000 keys per MiB of zone.
 */
const AVERAGE_OBJECT_BYTES = 64 * 1024;
const KEYS_PER_MB = 8000;

function port(value: number | string, what: string): number {
  const s = String(value);
  if (!/^[0-9]{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) {
    throw new EdgeConfigError(`${what} must be a port number 1–65535, not ${JSON.stringify(s)}`);
  }
  return Number(s);
}

function origin(raw: string): Origin {
  const m = ORIGIN.exec(raw);
  if (!m) {
    throw new EdgeConfigError(
      `--origin ${JSON.stringify(raw)} is not an origin URL: give http://host:port or https://host:port (no path, query or user)`,
    );
  }
  const scheme = m[1] as 'http' | 'https';
  let host = m[2]!;
  if (host.startsWith('[')) {
    if (isIP(host.slice(1, -1)) !== 6) throw new EdgeConfigError(`--origin ${JSON.stringify(raw)}: bad IPv6 address`);
  } else {
    if (!HOSTNAME.test(host) || host.length > 253) {
      throw new EdgeConfigError(`--origin ${JSON.stringify(raw)}: ${JSON.stringify(host)} is not a host name`);
    }
    host = host.toLowerCase();
  }
  // nginx's upstream `server` defaults to port 80 whatever the scheme: always write the port.
  const p = m[3] === undefined ? (scheme === 'https' ? 443 : 80) : port(m[3], `the port of --origin ${raw}`);
  return { scheme, host, port: p };
}

function absolutePath(raw: string, what: string): string {
  if (!SAFE_PATH.test(raw)) {
    throw new EdgeConfigError(
      `${what} must be an absolute path of letters, digits and . _ / + @ , = ~ - (no spaces, quotes, $ ; { } # \\): ${JSON.stringify(raw)}`,
    );
  }
  const p = raw.length > 1 ? raw.replace(/\/+$/, '') : raw;
  if (posix.normalize(p) !== p) throw new EdgeConfigError(`${what} must be a normalized path (no //, . or ..): ${raw}`);
  return p;
}

function inside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent === '/' ? '/' : `${parent}/`);
}

/** Checks every option; throws EdgeConfigError naming the first bad one. */
export function checkEdgeOptions(o: EdgeConfigOptions): Checked {
  if (!o.origins || o.origins.length === 0) throw new EdgeConfigError('give at least one --origin URL');
  const origins = o.origins.map(origin);
  const seen = new Set<string>();
  for (const x of origins) {
    const k = `${x.host}:${x.port}`;
    if (seen.has(k)) throw new EdgeConfigError(`--origin ${k} is given twice`);
    seen.add(k);
  }
  if (new Set(origins.map((x) => x.scheme)).size > 1) {
    throw new EdgeConfigError('the origins mix http and https: one upstream group speaks one scheme');
  }
  const listenPort = port(o.listen, '--listen');
  let listen = String(listenPort);
  if (o.listenAddress !== undefined && o.listenAddress !== '*') {
    const v = isIP(o.listenAddress);
    if (v === 0) {
      throw new EdgeConfigError(
        `--listen-address must be an IPv4 or IPv6 address, not ${JSON.stringify(o.listenAddress)}`,
      );
    }
    listen = v === 6 ? `[${o.listenAddress}]:${listenPort}` : `${o.listenAddress}:${listenPort}`;
  }
  const serverNames = (o.serverNames ?? []).map((n) => {
    const bare = n.startsWith('*.') ? n.slice(2) : n;
    if (!HOSTNAME.test(bare) || n.length > 253) {
      throw new EdgeConfigError(`--server-name ${JSON.stringify(n)} is not a host name (a leading *. is allowed)`);
    }
    return n.toLowerCase();
  });
  const cacheDir = absolutePath(o.cacheDir, '--cache-dir');
  if (cacheDir === '/') throw new EdgeConfigError('--cache-dir cannot be /: give a folder of its own');
  const size = SIZE.exec(o.maxSize ?? '10g');
  if (!size) {
    throw new EdgeConfigError(
      `--max-size must be a whole number with k, m or g (e.g. 500m, 10g), not ${JSON.stringify(o.maxSize)}`,
    );
  }
  const unit = size[2]!.toLowerCase() as keyof typeof UNIT;
  const bytes = Number(size[1]) * UNIT[unit];
  if (bytes < 2 ** 20) throw new EdgeConfigError(`--max-size ${o.maxSize} is below 1m`);
  const prefix = absolutePath(o.prefix ?? posix.dirname(cacheDir), '--prefix');
  // nginx's cache loader deletes every file it does not recognise under the cache folder: pid, logs and temp
  // files must live elsewhere, and the cache must not be one of the temp folders.
  if (inside(prefix, cacheDir)) throw new EdgeConfigError('--prefix must not be the cache folder or inside it');
  if (TEMP_DIRS.some((t) => inside(cacheDir, `${prefix === '/' ? '' : prefix}/${t}`))) {
    throw new EdgeConfigError(`--cache-dir must not be one of nginx's temp folders under ${prefix}`);
  }
  let user: string | undefined;
  if (o.user !== undefined) {
    const [name, group, extra] = o.user.split(':');
    if (!name || !USER.test(name) || (group !== undefined && !USER.test(group)) || extra !== undefined) {
      throw new EdgeConfigError(`--user must be a user name, optionally user:group, not ${JSON.stringify(o.user)}`);
    }
    user = group === undefined ? name : `${name} ${group}`;
  }
  const keysZoneMb = Math.min(2048, Math.max(10, Math.ceil(bytes / AVERAGE_OBJECT_BYTES / KEYS_PER_MB)));
  return {
    origins,
    listen,
    serverNames,
    cacheDir,
    maxSize: `${size[1]}${unit}`,
    keysZoneMb,
    prefix,
    user,
  };
}

const TEMP_DIRS = ['client-temp', 'proxy-temp', 'fastcgi-temp', 'uwsgi-temp', 'scgi-temp'];

/** The nginx.conf of an edge cache in front of the given origins. */
export function nginxEdgeConfig(o: EdgeConfigOptions): string {
  const c = checkEdgeOptions(o);
  const at = (name: string) => `${c.prefix === '/' ? '' : c.prefix}/${name}`;
  const scheme = c.origins[0]!.scheme;
  const upstream = `${scheme}://smoothcast_origins`;
  const servers = c.origins.map((x) => `    server ${x.host}:${x.port} max_fails=2 fail_timeout=10s;`).join('\n');
  const sameName = new Set(c.origins.map((x) => x.host)).size === 1 ? c.origins[0]!.host : undefined;
  const tls =
    scheme === 'https'
      ? `
  # https origins: the name sent in SNI (and checked, once proxy_ssl_verify is turned on with a CA file).
  proxy_ssl_server_name on;
  proxy_ssl_session_reuse on;${sameName && !sameName.startsWith('[') ? `\n  proxy_ssl_name ${sameName};` : ''}
`
      : '';
  const key = '"$scheme://$sc_host$sc_path?$sc_args"';
  const sliceKey = '"$scheme://$sc_host$sc_path?$sc_args|$slice_range"';
  const forwarded = `proxy_set_header Connection "";
    proxy_set_header Host $sc_host;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $sc_host;
    proxy_set_header Forwarded "";`;
  // `updating`: while one request refreshes an expired entry, the others get the old copy — and with
  // background_update the refreshing request too. Not for manifests (see there).
  const cached = (k: string, how: { lock: boolean; updating: boolean }) => `proxy_cache smoothcast_edge;
      proxy_cache_key ${k};
      proxy_cache_bypass $sc_personal;
      proxy_cache_revalidate on;
      proxy_cache_use_stale ${how.updating ? 'updating ' : ''}error timeout http_500 http_502 http_503 http_504;${
        how.lock
          ? `
      proxy_cache_lock on;
      proxy_cache_lock_timeout 10s;
      proxy_cache_lock_age 10s;`
          : ''
      }`;
  return `# smoothcast edge cache, written by \`smoothcast edge-config\` (docs/edge.md). Regenerate rather than edit.
#
#   origins  ${c.origins.map((x) => `${x.scheme}://${x.host}:${x.port}`).join(' ')}
#   cache    ${c.cacheDir} (at most ${c.maxSize}; nginx creates it, its parent must exist; nothing else may live in it)
#   prefix   ${c.prefix} (must exist: pid, logs and temp folders)
#
#   start:   nginx -c THIS_FILE      reload: nginx -c THIS_FILE -s reload      stop: nginx -c THIS_FILE -s quit
${c.user ? `\n# nginx started as root runs its workers as this user; the cache and temp folders are given to it.\nuser ${c.user};\n` : ''}
worker_processes auto;
pid ${at('nginx.pid')};
error_log ${at('error.log')} warn;

# A viewer takes two connections (client, origin) and cache files a few more.
worker_rlimit_nofile 16384;
events {
  worker_connections 4096;
}

http {
  sendfile on;
  tcp_nopush on;
  server_tokens off;
  keepalive_timeout 65s;
  default_type application/octet-stream;

  # Every module's temp folder under the prefix: nginx creates them at start, and would otherwise try the
  # packaged defaults under /var/lib/nginx.
  client_body_temp_path ${at('client-temp')};
  proxy_temp_path ${at('proxy-temp')};
  fastcgi_temp_path ${at('fastcgi-temp')};
  uwsgi_temp_path ${at('uwsgi-temp')};
  scgi_temp_path ${at('scgi-temp')};

  # Logged without the query's token and sid (no credential reaches a log), with how the cache answered
  # (HIT, MISS, BYPASS, EXPIRED, STALE, UPDATING, REVALIDATED) and how long the request and the origin took.
  log_format smoothcast_edge '$remote_addr [$time_iso8601] "$request_method $sc_path?$sc_args" $status '
                             '$body_bytes_sent $request_time cache=$upstream_cache_status '
                             'origin=$upstream_addr origin_time=$upstream_response_time "$http_user_agent"';
  access_log ${at('access.log')} smoothcast_edge buffer=64k flush=1s;

  # One object per file, two folder levels; the zone holds the keys (~${KEYS_PER_MB} per MiB). Objects unused for
  # 7 days are dropped even when still fresh; past max_size the least recently used go first.
  proxy_cache_path ${c.cacheDir} levels=1:2 keys_zone=smoothcast_edge:${c.keysZoneMb}m max_size=${c.maxSize} inactive=7d use_temp_path=off;

  upstream smoothcast_origins {
    # Two failures (connect error, timeout, 502/503/504) within 10 s take an origin out for 10 s; the request
    # that failed is retried on the next one (proxy_next_upstream below).
${servers}
    keepalive 32;
    keepalive_requests 10000;
    # Below the origin's server.idleTimeoutSeconds (60 s by default), so the edge closes an idle connection
    # before the origin does and never reuses one that is being closed.
    keepalive_timeout 30s;
  }

  # The cache key: scheme, Host, the path as the client sent it (the URI nginx passes on, not the decoded $uri)
  # and the query WITHOUT the playback token and viewer session id.
  #
  # Why leaving token and sid out is safe: the origin checks the token on every request it gets, and every answer
  # that depends on the token or the session (manifests written for one viewer, clear signed segments, keys, signed
  # downloads) is "Cache-Control: private" or "no-store" — which nginx never stores (Cache-Control is honoured;
  # nothing here ignores it). So whatever is stored under a key is a public answer, the same for every viewer,
  # valid whichever token (or none) asked for it. Errors (403 for a bad token, 404) carry no Cache-Control and
  # are not stored either: only 200/206 have a fallback lifetime.
  map $request_uri $sc_path {
    "~^(?<sc_path_only>[^?]*)" $sc_path_only;
  }
  map $args $sc_args_notoken {
    "~^token=[^&]*(?:&(?<sc_tok_rest>.*))?$" $sc_tok_rest;
    "~^(?<sc_tok_before>.*?)&token=[^&]*(?<sc_tok_after>(?:&.*)?)$" "$sc_tok_before$sc_tok_after";
    default $args;
  }
  map $sc_args_notoken $sc_args {
    "~^sid=[^&]*(?:&(?<sc_sid_rest>.*))?$" $sc_sid_rest;
    "~^(?<sc_sid_before>.*?)&sid=[^&]*(?<sc_sid_after>(?:&.*)?)$" "$sc_sid_before$sc_sid_after";
    default $sc_args_notoken;
  }
  # Requests that carry a session id or a token get a private answer (except encrypted segments, whose bytes are
  # the same for everyone and which the origin never gates on the token): they skip the cache lookup. Not for
  # safety (private answers are never stored) but because they share one key with everyone else's: nginx's cache
  # lock would queue each viewer's private request behind the previous one's. And each session request then
  # reaches the origin, which keeps the session alive.
  map "$sc_path?$args" $sc_personal {
    "~[?&]sid=" 1;
    "~^/v/[^?]*/(?:init|[0-9]+)\\.(?:aes|cenc|cbcs)\\.(?:mp4|m4s)\\?" 0;
    "~[?&]token=" 1;
    default 0;
  }
  # An LL-HLS blocking playlist reload (RFC 8216bis §6.2.5.2).
  map $args $sc_blocking {
    "~(?:^|&)_HLS_msn=" 1;
    default 0;
  }
  # The Host the origin sees (it writes absolute licence URLs from it) is the one in the key.
  map $http_host $sc_host {
    "" $host;
    default $http_host;
  }
${tls}
  server {
    listen ${c.listen};
${c.serverNames.length > 0 ? `    server_name ${c.serverNames.join(' ')};\n` : ''}
    add_header X-Cache-Status $upstream_cache_status always;

    proxy_http_version 1.1;
    # Keep-alive to the origins (Connection: close otherwise). The origin trusts X-Forwarded-* only with
    # server.trustProxy: true; the client address is set, not appended to, so a client cannot pick its own.
    ${forwarded}
    proxy_connect_timeout 3s;
    proxy_next_upstream error timeout http_502 http_503 http_504;
    proxy_next_upstream_tries 3;
    proxy_next_upstream_timeout 15s;
    proxy_buffers 16 64k;
    proxy_busy_buffers_size 128k;

    # Playback: segments, posters, thumbnails, captions (and, below, manifests and ranged files). Lifetimes are
    # the origin's Cache-Control: segments a year, VOD manifests origin.manifestMaxAge, live playlists 0–6 s.
    #
    # The lock sends one request per object to the origins however many viewers ask at once; the others wait for
    # it (polling every 0.5 s) and are answered from the cache. 10 s is above the longest an origin holds a
    # request: an LL-HLS preload-hinted part, or a blocking playlist reload, waits up to 3 target durations (6 s)
    # for the media. When the answer turns out not to be storable, the waiters go to the origin one after the
    # other: so the lock is only on where answers are storable (below: not for plain manifest requests).
    location /v/ {
      proxy_pass ${upstream};
      ${cached(key, { lock: true, updating: true })}
      proxy_cache_background_update on;
      # Only for a 200/206 that says nothing about its lifetime.
      proxy_cache_valid 200 206 10s;
      proxy_read_timeout 30s;
    }

    # Answers the origin never lets anyone store (no-store, private, redirects): the clock of live DASH, the
    # watch page's data, keys, the licence, a live stream's redirect to its current event. Straight through.
    location ~ "^/v/(?:time|live/.*|[^/]+/player\\.json|[^/]+/[^/]+/(?:key\\.bin|clearkey))$" {
      proxy_pass ${upstream};
      proxy_cache off;
    }

    # Manifests: cached as long as the origin says, without the lock, because many are for one viewer only
    # while their key is shared (viewer limits: a manifest without sid gets a new session, private) and a live
    # playlist is max-age=0. A blocking playlist reload (_HLS_msn: public, max-age=6, asked for by every viewer
    # at once) goes to @blocking_reload, which has the lock.
    #
    # No stale copies while one is refreshed (no "updating", no background_update): when an asset is deleted,
    # made signed or given a viewer limit, the origin's new answer (404, 403, private) is not storable and the
    # expired public copy would stay in the cache — nginx would go on serving it to everyone (to every request,
    # with background_update). Without them a manifest is gone from the edge max-age + 1 s after the change.
    # Stale copies still stand in when the origins fail.
    location ~ "^/v/.*(?:\\.m3u8|\\.mpd|/Manifest)$" {
      error_page 418 = @blocking_reload;
      if ($sc_blocking) {
        return 418;
      }
      proxy_pass ${upstream};
      ${cached(key, { lock: false, updating: false })}
      proxy_cache_valid 200 206 10s;
      proxy_read_timeout 30s;
    }

    location @blocking_reload {
      proxy_pass ${upstream};
      ${cached(key, { lock: true, updating: false })}
      proxy_cache_valid 200 206 10s;
      proxy_read_timeout 30s;
    }

    # Progressive downloads and single rendition files, asked for in ranges: cached ${SLICE} at a time, each
    # slice its own entry (and origin request), so a range deep into a large file needs only the slices under it.
    # background_update does not combine with slice.
    location ~ "^/v/[a-z0-9]{8,32}/r[0-9a-z-]{1,40}/(?:download-)?[va][0-9]{1,2}\\.(?:mp4|m4a)$" {
      slice ${SLICE};
      proxy_pass ${upstream};
      ${cached(sliceKey, { lock: true, updating: true })}
      proxy_set_header Range $slice_range;
      ${forwarded.replaceAll('\n    ', '\n      ')}
      proxy_cache_valid 200 206 10s;
      proxy_read_timeout 30s;
    }

    # The API: never cached. Bodies stream through unbuffered and unlimited here (the origin enforces its own
    # limits and cuts off slow bodies).
    location /api/ {
      proxy_pass ${upstream};
      proxy_cache off;
      client_max_body_size 0;
      proxy_request_buffering off;
      proxy_read_timeout 120s;
      proxy_send_timeout 120s;
    }

    # tus uploads: PATCH bodies of any size go to the origin as they arrive.
    location /api/uploads {
      proxy_pass ${upstream};
      proxy_cache off;
      client_max_body_size 0;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }

    # Server-sent events (an asset's, a live stream's): each event passed on at once; the stream stays open
    # (the origin sends a keep-alive comment every 15 s).
    location ~ "^/api/(?:assets|live)/[^/]+/events$" {
      proxy_pass ${upstream};
      proxy_cache off;
      proxy_buffering off;
      proxy_read_timeout 1h;
    }

    # The web app: its pages are no-cache (never stored: no lock, which would queue them), its hashed /assets/
    # files immutable for a year.
    location / {
      proxy_pass ${upstream};
      ${cached(key, { lock: false, updating: true })}
      proxy_cache_background_update on;
    }

    location /assets/ {
      proxy_pass ${upstream};
      ${cached(key, { lock: true, updating: true })}
      proxy_cache_background_update on;
    }
  }
}
`;
}

// One typed, validated configuration. Sources, later ones winning: built-in defaults, a JSON config file
// (--config FILE or SMOOTHCAST_CONFIG), environment variables (SMOOTHCAST_<SECTION>_<KEY>), command-line flags.
// An unknown key or a bad value anywhere stops the start with a message naming it (MediaMTX conf.Load + Validate).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SmoothcastError } from './errors.ts';

type Leaf =
  | { type: 'int'; min: number; max: number; default: number; doc: string }
  | { type: 'number'; min: number; max: number; default: number; doc: string }
  | { type: 'string'; default: string; doc: string; pattern?: RegExp; oneOf?: readonly string[] }
  | { type: 'bool'; default: boolean; doc: string };

const GiB = 1024 ** 3;

/** The schema: every key, its type, bounds, default and meaning (docs/configuration.md is generated from this). */
export const SCHEMA = {
  server: {
    host: { type: 'string', default: '0.0.0.0', doc: 'address to listen on' },
    port: { type: 'int', min: 0, max: 65535, default: 8080, doc: 'HTTP port (0 = any free port)' },
    publicUrl: {
      type: 'string',
      default: '',
      pattern: /^(|https?:\/\/[^\s]+[^/])$/,
      doc: 'absolute base URL for playback links (empty: links relative to the server)',
    },
    bodyLimit: { type: 'int', min: 1024, max: 64 * 1024 * 1024, default: 1024 * 1024, doc: 'max JSON body bytes' },
    headersTimeoutSeconds: {
      type: 'number',
      min: 0.1,
      max: 600,
      default: 15,
      doc: 'a client must send its whole request head within this time (slowloris on any route is cut off)',
    },
    idleTimeoutSeconds: {
      type: 'number',
      min: 0.1,
      max: 3600,
      default: 60,
      doc: 'a connection that sends and receives nothing for this long is closed',
    },
    minBodyBytesPerSecond: {
      type: 'int',
      min: 0,
      max: 2 ** 30,
      default: 1024,
      doc: 'a request body (an upload PATCH) slower than this on average, after bodyGraceSeconds, is cut off (0: off)',
    },
    bodyGraceSeconds: {
      type: 'number',
      min: 0.1,
      max: 3600,
      default: 20,
      doc: 'seconds a request body may take before minBodyBytesPerSecond applies',
    },
    maxHeaderBytes: {
      type: 'int',
      min: 1024,
      max: 1024 * 1024,
      default: 16 * 1024,
      doc: 'largest request head, bytes; larger → 431',
    },
    trustProxy: {
      type: 'bool',
      default: false,
      doc: 'take the client address from X-Forwarded-For (only behind a proxy you run: viewer limits, IP-bound tokens, login limits)',
    },
    roles: {
      type: 'string',
      default: 'api,upload,origin,worker,live,web',
      pattern: /^(api|upload|origin|worker|live|web)(,(api|upload|origin|worker|live|web))*$/,
      doc: 'the roles this process runs, comma-separated from api, upload, origin, worker, live, web (serve --roles)',
    },
    advertiseUrl: {
      type: 'string',
      default: '',
      pattern: /^(|http:\/\/[^\s/]+)$/,
      doc: 'the URL other smoothcast nodes reach this process at (http://host:port), for files it holds while it encodes to S3 or ingests live; empty: http://127.0.0.1:<port> (one machine)',
    },
    metricsToken: {
      type: 'string',
      default: '',
      doc: 'bearer token required on GET /metrics (empty: open; put it behind your network policy)',
    },
    rateLimitPerMinute: {
      type: 'int',
      min: 0,
      max: 10_000_000,
      default: 1200,
      doc: 'API requests per client address per minute (playback and uploads are not counted; 0: off)',
    },
  },
  database: {
    url: {
      type: 'string',
      default: '',
      pattern: /^(|postgres(ql)?:\/\/\S+)$/,
      doc: 'PostgreSQL URL (postgres://user:password@host:port/db; a unix socket as ?host=/run/postgresql); empty: SQLite in the data folder',
    },
    poolSize: { type: 'int', min: 1, max: 200, default: 10, doc: 'PostgreSQL connections per process' },
    migrate: {
      type: 'bool',
      default: true,
      doc: 'apply pending schema migrations at start; false: refuse to start unless `smoothcast migrate` has brought the schema up to date',
    },
  },
  storage: {
    dataDir: { type: 'string', default: 'data', doc: 'folder holding the database and all media' },
    keepSources: {
      type: 'bool',
      default: true,
      doc: 'keep each source file after its encode (so it can be re-encoded); false deletes it once ready',
    },
    backend: {
      type: 'string',
      default: 'local',
      oneOf: ['local', 's3'],
      doc: 'where media lives: local (DATA/media) or s3 (an S3-compatible object store, the s3* keys)',
    },
    scratchDir: {
      type: 'string',
      default: '',
      doc: 'local folder for files staged to or fetched from S3 while ffmpeg works on them; empty: DATA/scratch',
    },
    s3Endpoint: {
      type: 'string',
      default: '',
      pattern: /^(|https?:\/\/[^\s/]+(\/[^\s]*)?)$/,
      doc: 'S3 endpoint URL, e.g. http://127.0.0.1:9000 (empty: AWS S3 of s3Region)',
    },
    s3Region: { type: 'string', default: 'us-east-1', pattern: /^[a-z0-9-]{1,64}$/, doc: 'S3 region (signing)' },
    s3Bucket: {
      type: 'string',
      default: '',
      pattern: /^(|[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])$/,
      doc: 'S3 bucket holding the media, created at start when missing (required with backend s3)',
    },
    s3Prefix: {
      type: 'string',
      default: '',
      pattern: /^(|[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*\/?)$/,
      doc: 'folder-like prefix put before every object key in the bucket (e.g. smoothcast/); empty: none',
    },
    s3AccessKeyId: {
      type: 'string',
      default: '',
      doc: 'S3 access key id; empty: the AWS SDK default chain (AWS_ACCESS_KEY_ID, shared config, instance role)',
    },
    s3SecretAccessKey: { type: 'string', default: '', doc: 'S3 secret access key (with s3AccessKeyId)' },
    s3ForcePathStyle: {
      type: 'bool',
      default: true,
      doc: 'address buckets as ENDPOINT/BUCKET/KEY rather than BUCKET.ENDPOINT/KEY (most self-hosted S3 servers)',
    },
    s3CacheBytes: {
      type: 'int',
      min: 0,
      max: 2 ** 40,
      default: 64 * 1024 * 1024,
      doc: 'bytes of S3 object ranges kept in memory per process (hot segments, index headers); 0: off',
    },
  },
  uploads: {
    maxSize: {
      type: 'int',
      min: 1,
      max: 2 ** 50,
      default: 20 * GiB,
      doc: 'largest upload, bytes; refused with 413 at creation (the smaller of this and limits.maxFileSize applies)',
    },
    expireHours: {
      type: 'number',
      min: 0.0001,
      max: 24 * 365,
      default: 24,
      doc: 'an unfinished upload without progress for this long expires and its bytes are deleted',
    },
    sweepSeconds: { type: 'int', min: 1, max: 86400, default: 600, doc: 'how often expired uploads are swept' },
  },
  captions: {
    maxBytes: {
      type: 'int',
      min: 1024,
      max: 64 * 1024 * 1024,
      default: 4 * 1024 * 1024,
      doc: 'largest sidecar caption file (.vtt/.srt) accepted, bytes; larger ones are refused with 413 CAPTION_TOO_LARGE',
    },
  },
  worker: {
    enabled: { type: 'bool', default: true, doc: 'run encode jobs in this process' },
    concurrency: { type: 'int', min: 1, max: 64, default: 1, doc: 'encodes at a time' },
    leaseSeconds: {
      type: 'int',
      min: 5,
      max: 3600,
      default: 30,
      doc: 'job lease; a dead worker’s job is retaken after it',
    },
    pollMs: { type: 'int', min: 50, max: 60_000, default: 250, doc: 'how often an idle worker looks for jobs' },
    maxAttempts: { type: 'int', min: 1, max: 20, default: 3, doc: 'tries per job for transient failures' },
  },
  encode: {
    segmentDuration: { type: 'number', min: 1, max: 10, default: 2, doc: 'segment (keyframe interval) seconds' },
    firstSegmentDuration: {
      type: 'number',
      min: 0.5,
      max: 10,
      default: 1,
      doc: 'seconds of the first segment (and of every audio segment), so an asset is playable sooner; capped at segmentDuration',
    },
    preset: {
      type: 'string',
      default: 'veryfast',
      oneOf: ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow'],
      doc: 'x264 preset',
    },
    threads: { type: 'int', min: 0, max: 256, default: 0, doc: 'ffmpeg threads (0 = ffmpeg decides)' },
    timeoutFactor: {
      type: 'number',
      min: 0.1,
      max: 1000,
      default: 20,
      doc: 'ffmpeg is stopped after max(minTimeoutSeconds, timeoutFactor × source duration)',
    },
    minTimeoutSeconds: { type: 'int', min: 10, max: 7 * 86400, default: 600, doc: 'see timeoutFactor' },
    probeTimeoutSeconds: { type: 'int', min: 1, max: 3600, default: 60, doc: 'ffprobe time limit' },
  },
  limits: {
    maxFileSize: { type: 'int', min: 1, max: 2 ** 50, default: 20 * GiB, doc: 'largest source file, bytes' },
    maxDuration: { type: 'number', min: 1, max: 7 * 86400, default: 6 * 3600, doc: 'longest source, seconds' },
    maxWidth: { type: 'int', min: 16, max: 16384, default: 7680, doc: 'widest source frame, pixels' },
    maxHeight: { type: 'int', min: 16, max: 16384, default: 7680, doc: 'tallest source frame, pixels' },
    maxPixels: { type: 'int', min: 256, max: 2 ** 28, default: 7680 * 4320, doc: 'largest width × height' },
    maxSessionsPerIp: {
      type: 'int',
      min: 0,
      max: 100_000,
      default: 0,
      doc: 'playback sessions one client address may hold at once across all assets (0: no limit); over it → 429',
    },
  },
  security: {
    masterKey: {
      type: 'string',
      default: '',
      pattern: /^(|[0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)$/,
      doc: 'the 32-byte master key that wraps content keys, webhook secrets and the server signing key (64 hex digits or base64); empty: masterKeyFile',
    },
    masterKeyFile: {
      type: 'string',
      default: '',
      doc: 'file holding the master key; empty: DATA/secrets/master.key, created (mode 0600) on first start',
    },
    defaultPlaybackPolicy: {
      type: 'string',
      default: 'public',
      oneOf: ['public', 'signed'],
      doc: 'playback policy of new assets and live streams',
    },
    loginSessionHours: { type: 'number', min: 0.01, max: 24 * 365, default: 168, doc: 'how long a login lasts' },
    loginMaxFailures: {
      type: 'int',
      min: 1,
      max: 1000,
      default: 5,
      doc: 'failed logins per account within loginWindowMinutes before it is refused with 429 (per address: 4×)',
    },
    loginWindowMinutes: { type: 'number', min: 0.01, max: 1440, default: 15, doc: 'see loginMaxFailures' },
    playbackSessionIdleSeconds: {
      type: 'int',
      min: 5,
      max: 3600,
      default: 30,
      doc: 'a playback session with no request for this long frees its viewer slot',
    },
    playbackTokenMaxSeconds: {
      type: 'int',
      min: 60,
      max: 365 * 86400,
      default: 7 * 86400,
      doc: 'longest life of a playback token this server signs',
    },
    widevineLicenseUrl: {
      type: 'string',
      default: '',
      pattern: /^(|https?:\/\/\S+)$/,
      doc: 'DRM-ready: a Widevine license server put into DASH manifests of cenc/cbcs assets (with Widevine PSSH)',
    },
    playreadyLicenseUrl: {
      type: 'string',
      default: '',
      pattern: /^(|https?:\/\/\S+)$/,
      doc: 'DRM-ready: a PlayReady license server put into DASH manifests of cenc assets (with PlayReady PSSH)',
    },
  },
  progressive: {
    throttle: {
      type: 'bool',
      default: false,
      doc: 'bit-rate throttling of progressive downloads (IIS-style): a burst, then a multiple of the media bitrate',
    },
    burstSeconds: { type: 'number', min: 0, max: 3600, default: 20, doc: 'seconds of media sent at full speed first' },
    rateFactor: {
      type: 'number',
      min: 0.01,
      max: 100,
      default: 1.5,
      doc: "after the burst, send at this many times the file's media bitrate",
    },
  },
  origin: {
    indexCacheEntries: { type: 'int', min: 1, max: 1_000_000, default: 1000, doc: 'rendition indexes kept in memory' },
    manifestMaxAge: { type: 'int', min: 0, max: 86400, default: 10, doc: 'Cache-Control max-age of VOD manifests' },
    corsOrigin: { type: 'string', default: '*', doc: 'Access-Control-Allow-Origin for playback responses' },
    bufferPoolMB: {
      type: 'int',
      min: 0,
      max: 65536,
      default: 128,
      doc: 'MiB of segment read buffers kept for reuse (0: allocate per request); spares the GC at high request rates',
    },
    qoeFlushMs: {
      type: 'int',
      min: 50,
      max: 600_000,
      default: 5000,
      doc: "how often the viewing quality aggregated from players' CMCD (per session) is written to the database, ms",
    },
  },
  live: {
    enabled: { type: 'bool', default: true, doc: 'run the live ingest (RTMP, SRT, HTTP push) in this process' },
    host: { type: 'string', default: '0.0.0.0', doc: 'address the RTMP and SRT ingest listen on' },
    rtmpPort: { type: 'int', min: 0, max: 65535, default: 1935, doc: 'RTMP ingest port (0 = any free port)' },
    srtPorts: {
      type: 'string',
      default: '9000-9099',
      pattern: /^\d{1,5}-\d{1,5}$/,
      doc: 'UDP port range for SRT: each live stream gets its own listener port from it',
    },
    publicHost: {
      type: 'string',
      default: '',
      pattern: /^(|[A-Za-z0-9.-]{1,253}|\[[0-9a-fA-F:]{2,45}\])$/,
      doc: 'host name put in ingest URLs (rtmp://HOST/live, srt://HOST:PORT); empty: the host of server.publicUrl or the request',
    },
    transcode: {
      type: 'bool',
      default: true,
      doc: 'RTMP/SRT input is transcoded into the ladder; false stores the input rendition as is (per stream too)',
    },
    maxPublishers: { type: 'int', min: 1, max: 1000, default: 32, doc: 'RTMP connections open at once' },
    maxEventHours: { type: 'number', min: 0.01, max: 24 * 31, default: 48, doc: 'longest single encoder run, hours' },
  },
} as const satisfies Record<string, Record<string, Leaf>>;

type Schema = typeof SCHEMA;
type LeafValue<L> = L extends { type: 'bool' } ? boolean : L extends { type: 'string' } ? string : number;
export type Config = { readonly [S in keyof Schema]: { readonly [K in keyof Schema[S]]: LeafValue<Schema[S][K]> } };

/** A partial configuration as given by a file, flags or tests: `{ server: { port: 0 } }`. */
export type ConfigInput = { [S in keyof Schema]?: { [K in keyof Schema[S]]?: unknown } };

function invalid(where: string, message: string): SmoothcastError {
  return new SmoothcastError('CONFIG_INVALID', `${where}: ${message}`);
}

function coerce(leaf: Leaf, raw: unknown, where: string, fromText: boolean): number | string | boolean {
  switch (leaf.type) {
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (fromText && typeof raw === 'string' && /^(true|false|1|0)$/.test(raw)) return raw === 'true' || raw === '1';
      throw invalid(where, `expected true or false, got ${JSON.stringify(raw)}`);
    }
    case 'int':
    case 'number': {
      const n =
        typeof raw === 'number' ? raw : fromText && typeof raw === 'string' && raw.trim() ? Number(raw) : Number.NaN;
      if (!Number.isFinite(n)) throw invalid(where, `expected a number, got ${JSON.stringify(raw)}`);
      if (leaf.type === 'int' && !Number.isInteger(n)) throw invalid(where, `expected a whole number, got ${n}`);
      if (n < leaf.min || n > leaf.max) throw invalid(where, `${n} is outside ${leaf.min}…${leaf.max}`);
      return n;
    }
    case 'string': {
      if (typeof raw !== 'string') throw invalid(where, `expected a string, got ${JSON.stringify(raw)}`);
      if (leaf.oneOf && !leaf.oneOf.includes(raw)) throw invalid(where, `expected one of ${leaf.oneOf.join(', ')}`);
      if (leaf.pattern && !leaf.pattern.test(raw)) throw invalid(where, `${JSON.stringify(raw)} is not valid`);
      return raw;
    }
  }
}

function leafOf(section: string, key: string): Leaf | undefined {
  const s = (SCHEMA as Record<string, Record<string, Leaf>>)[section];
  return s && Object.hasOwn(s, key) ? s[key] : undefined;
}

function apply(target: Record<string, Record<string, unknown>>, input: unknown, origin: string, fromText: boolean) {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid(origin, 'expected an object');
  for (const [section, values] of Object.entries(input)) {
    if (!Object.hasOwn(SCHEMA, section)) throw invalid(origin, `unknown section "${section}"`);
    if (typeof values !== 'object' || values === null || Array.isArray(values)) {
      throw invalid(`${origin} ${section}`, 'expected an object');
    }
    for (const [key, raw] of Object.entries(values)) {
      const leaf = leafOf(section, key);
      if (!leaf) throw invalid(origin, `unknown key "${section}.${key}"`);
      if (raw === undefined) continue;
      const t = target[section];
      if (t) t[key] = coerce(leaf, raw, `${origin} ${section}.${key}`, fromText);
    }
  }
}

/** The environment variable of a key: worker.concurrency → SMOOTHCAST_WORKER_CONCURRENCY. */
export function envName(section: string, key: string): string {
  return `SMOOTHCAST_${section}_${key.replace(/[A-Z]/g, (c) => `_${c}`)}`.toUpperCase();
}

/** SMOOTHCAST_WORKER_CONCURRENCY → worker.concurrency. Unknown SMOOTHCAST_* variables are errors (typos). */
function envInput(env: NodeJS.ProcessEnv): ConfigInput {
  const out: Record<string, Record<string, string>> = {};
  const names = new Map<string, [string, string]>();
  for (const [section, keys] of Object.entries(SCHEMA)) {
    for (const key of Object.keys(keys)) {
      names.set(envName(section, key), [section, key]);
    }
  }
  const ignored = new Set(['SMOOTHCAST_CONFIG', 'SMOOTHCAST_FIXTURES']);
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('SMOOTHCAST_') || ignored.has(name) || value === undefined) continue;
    const path = names.get(name);
    if (!path) throw invalid('environment', `unknown variable ${name}`);
    out[path[0]] = { ...out[path[0]], [path[1]]: value };
  }
  return out as ConfigInput;
}

export function defaults(): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [section, keys] of Object.entries(SCHEMA)) {
    out[section] = Object.fromEntries(Object.entries(keys).map(([k, leaf]) => [k, (leaf as Leaf).default]));
  }
  return out;
}

export interface LoadOptions {
  /** Path of a JSON config file; defaults to $SMOOTHCAST_CONFIG when set. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Values from flags or tests, applied last. */
  overrides?: ConfigInput;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const cfg = defaults();
  const file = opts.file ?? env.SMOOTHCAST_CONFIG;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw invalid(`config file ${file}`, (err as Error).message);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw invalid(`config file ${file}`, `not valid JSON: ${(err as Error).message}`);
    }
    apply(cfg, json, `config file ${file}:`, false);
  }
  apply(cfg, envInput(env), 'environment:', true);
  if (opts.overrides) apply(cfg, opts.overrides, 'option', true);
  const storage = cfg.storage as { dataDir: string };
  storage.dataDir = resolve(storage.dataDir);
  return deepFreeze(cfg) as unknown as Config;
}

function deepFreeze<T extends object>(o: T): T {
  for (const v of Object.values(o)) if (typeof v === 'object' && v !== null) deepFreeze(v);
  return Object.freeze(o);
}

// `smoothcast live create|ls|show|start|stop|shutdown|rotate-key|rm`: the live streams (publishing points) of a
// running server, over its HTTP API (docs/openapi.yaml) at --server URL (default: server.publicUrl, else
// http://localhost:<server.port>). --json prints the API's objects, one per line. An API error is printed as
// `CODE: message` (with --json also as `{"error":{…}}` on stdout) and exits 1; a usage error exits 2.
import type { Config } from '../core/config.ts';
import type { LiveStreamJson } from '../roles/api/live.ts';
import { bearer, cliToken } from './accounts.ts';
import type { Cli } from './main.ts';

const USAGE = `usage: smoothcast live <command> [--server URL] [--json]
  live create TITLE [--dvr SECONDS] [--latency low|standard] [--no-archive]
  live ls
  live show ID
  live start|stop|shutdown|rotate-key|rm ID`;

class ApiError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

class Usage extends Error {}

/** Authorization of this run (--token or $SMOOTHCAST_TOKEN). */
let auth: Record<string, string> = {};

async function request<T>(server: string, method: string, path: string, body?: unknown): Promise<T | null> {
  let res: Response;
  try {
    res = await fetch(`${server}${path}`, {
      method,
      ...(body === undefined
        ? { headers: auth }
        : { headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`cannot reach ${server}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {}
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(e?.code ?? `HTTP_${res.status}`, e?.message ?? (text.slice(0, 200) || res.statusText));
  }
  if (parsed === null) throw new Error(`${method} ${path}: the server answered ${res.status} without JSON`);
  return parsed as T;
}

const streamPath = (id: string, rest = '') => `/api/live/${encodeURIComponent(id)}${rest}`;

function mbps(bits: number): string {
  return `${(bits / 1e6).toFixed(1)} Mb/s`;
}

/** The stream as a person reads it: state, ingest, OBS settings, playback URLs (absolute), stats and targets. */
export function describeStream(s: LiveStreamJson, server: string): string {
  const abs = (u: string) => new URL(u, `${server}/`).href;
  const row = (k: string, v: string) => `  ${k.padEnd(11)} ${v}`;
  const state = s.reconnectDeadline
    ? `${s.state} (the publisher dropped; reconnecting until ${s.reconnectDeadline})`
    : s.state;
  const st = s.stats;
  const stats = st
    ? [
        mbps(st.inputBitrate),
        `${st.inputFps} fps`,
        st.inputWidth && st.inputHeight ? `${st.inputWidth}x${st.inputHeight}` : null,
        `${st.viewers} viewer${st.viewers === 1 ? '' : 's'}`,
        st.latencySeconds !== null ? `latency ${st.latencySeconds.toFixed(1)} s` : null,
      ]
        .filter(Boolean)
        .join(' · ')
    : 'none (no publisher)';
  const lines = [
    `${s.id}  ${s.title}`,
    row('state', state),
    row('event', s.currentAssetId ? `${s.currentAssetId}  ${abs(`/watch/${s.currentAssetId}`)}` : 'none yet'),
    row(
      'settings',
      [
        `DVR ${s.dvrWindowSeconds ? `${s.dvrWindowSeconds} s` : 'whole event'}`,
        `latency ${s.latency}`,
        `archive ${s.archive ? 'on' : 'off'}`,
        `reconnect ${s.reconnectWindowSeconds} s`,
        `transcode ${s.transcode === null ? 'server default' : s.transcode ? 'on' : 'off'}`,
      ].join(' · '),
    ),
    'OBS (Settings → Stream → Service: Custom)',
    row('Server', s.obs.server),
    row('Stream Key', s.obs.streamKey),
    'ingest',
    row('RTMP', s.ingest.rtmp),
    row('SRT', s.ingest.srt ?? 'none'),
    row('HTTP', s.ingest.http),
    'playback',
    row('HLS', abs(s.playback.hls)),
    row('DASH', abs(s.playback.dash)),
    row('Smooth', abs(s.playback.smooth)),
    `stats         ${stats}`,
  ];
  if (s.targets.length) {
    lines.push('push targets');
    for (const t of s.targets) lines.push(`  ${t.id}  ${t.state.padEnd(10)} ${t.url}${t.error ? `  ${t.error}` : ''}`);
  }
  return lines.join('\n');
}

function oneLine(s: LiveStreamJson): string {
  const event = s.currentAssetId ? `  event ${s.currentAssetId}` : '';
  return `${s.id}  ${s.state.padEnd(9)} ${s.title}${event}`;
}

function createBody(cli: Cli): Record<string, unknown> {
  const title = cli.positionals.slice(1).join(' ').trim();
  if (!title) throw new Usage('give a title: live create TITLE');
  const body: Record<string, unknown> = { title };
  const dvr = cli.values.dvr;
  if (dvr !== undefined) {
    const n = Number(dvr);
    if (typeof dvr !== 'string' || !/^\d+$/.test(dvr) || !Number.isSafeInteger(n)) {
      throw new Usage(`--dvr must be a whole number of seconds (0: the whole event), not ${JSON.stringify(dvr)}`);
    }
    body.dvrWindowSeconds = n;
  }
  const latency = cli.values.latency;
  if (latency !== undefined) {
    if (latency !== 'low' && latency !== 'standard') throw new Usage('--latency must be low or standard');
    body.latency = latency;
  }
  if (cli.values['no-archive']) body.archive = false;
  return body;
}

async function allStreams(server: string): Promise<LiveStreamJson[]> {
  const out: LiveStreamJson[] = [];
  for (;;) {
    const page = await request<{ streams: LiveStreamJson[]; total: number }>(
      server,
      'GET',
      `/api/live?limit=500&offset=${out.length}`,
    );
    if (!page) break;
    out.push(...page.streams);
    if (page.streams.length === 0 || out.length >= page.total) break;
  }
  return out;
}

export async function liveCommand(config: Config, cli: Cli): Promise<number> {
  const [sub, id] = cli.positionals;
  const json = Boolean(cli.values.json);
  auth = bearer(cliToken(cli));
  const server = String(cli.values.server ?? (config.server.publicUrl || `http://localhost:${config.server.port}`))
    .trim()
    .replace(/\/+$/, '');
  const print = (s: LiveStreamJson, human: string) => console.log(json ? JSON.stringify(s) : human);
  try {
    if (!/^https?:\/\/\S+$/.test(server)) throw new Usage(`--server must be an http(s) URL, not ${server}`);
    switch (sub) {
      case 'create': {
        const s = (await request<LiveStreamJson>(server, 'POST', '/api/live', createBody(cli)))!;
        print(s, `created ${describeStream(s, server)}`);
        return 0;
      }
      case 'ls': {
        const streams = await allStreams(server);
        if (json) for (const s of streams) console.log(JSON.stringify(s));
        else if (streams.length === 0) console.log('no live streams');
        else for (const s of streams) console.log(oneLine(s));
        return 0;
      }
      case 'show':
      case 'start':
      case 'stop':
      case 'shutdown':
      case 'rotate-key':
      case 'rm': {
        if (!id || cli.positionals.length > 2) throw new Usage(`give one live stream id: live ${sub} ID`);
        if (sub === 'rm') {
          await request(server, 'DELETE', streamPath(id));
          console.log(json ? JSON.stringify({ id, deleted: true }) : `deleted ${id}`);
          return 0;
        }
        if (sub === 'show') {
          const s = (await request<LiveStreamJson>(server, 'GET', streamPath(id)))!;
          print(s, describeStream(s, server));
          return 0;
        }
        const s = (await request<LiveStreamJson>(server, 'POST', streamPath(id, `/${sub}`)))!;
        print(s, sub === 'rotate-key' ? `${oneLine(s)}\n  new stream key: ${s.streamKey}` : oneLine(s));
        return 0;
      }
      default:
        throw new Usage(sub ? `unknown live command "${sub}"` : 'give a live command');
    }
  } catch (err) {
    if (err instanceof Usage) {
      console.error(`smoothcast live: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    const code = err instanceof ApiError ? err.code : null;
    const message = (err as Error).message;
    if (json && code) console.log(JSON.stringify({ error: { code, message } }));
    console.error(`smoothcast live: ${code ? `${code}: ` : ''}${message}`);
    return 1;
  }
}

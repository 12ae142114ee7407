// Live test helpers: a stream created through the API and a real ffmpeg publishing to it.
import { type ChildProcess, spawn } from 'node:child_process';
import type { LiveStreamJson } from '../../src/roles/api/live.ts';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { until } from './platform.ts';

/** A server to call the API of: its base URL and the credential to send (a TestPlatform is one). */
export interface ApiServer {
  url: string;
  /** `{ authorization: 'Bearer …' }` */
  auth: Record<string, string>;
}

export async function createStream(server: ApiServer, body: Record<string, unknown> = {}): Promise<LiveStreamJson> {
  const r = await fetch(`${server.url}/api/live`, {
    method: 'POST',
    headers: { ...server.auth, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'test event', ...body }),
  });
  if (r.status !== 201) throw new Error(`POST /api/live: ${r.status} ${await r.text()}`);
  return (await r.json()) as LiveStreamJson;
}

export async function liveAction(server: ApiServer, id: string, action: string): Promise<Response> {
  return fetch(`${server.url}/api/live/${id}/${action}`, { method: 'POST', headers: server.auth });
}

export interface Publisher {
  child: ChildProcess;
  startedAt: number;
  exited: Promise<{ code: number | null; stderr: string }>;
}

/** ffmpeg at 1× from lavfi (testsrc2 + a sine), H.264 2 s GOP + AAC, to an RTMP/SRT/HTTP URL. */
export function publish(
  url: string,
  o: { seconds: number; size?: string; rate?: number; format?: 'flv' | 'mpegts' | 'ismv' | 'mp4'; extra?: string[] },
): Publisher {
  const rate = o.rate ?? 30;
  const format = o.format ?? 'flv';
  const args = [
    '-hide_banner',
    '-loglevel',
    'error',
    '-re',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=${o.size ?? '1280x720'}:rate=${rate}`,
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=48000',
    '-t',
    String(o.seconds),
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-tune',
    'zerolatency',
    '-g',
    String(2 * rate),
    '-keyint_min',
    String(2 * rate),
    '-c:a',
    'aac',
    ...(o.extra ?? []),
    '-f',
    format,
    url,
  ];
  const child = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stderr })),
  );
  // Never outlive the test.
  const kill = setTimeout(() => child.kill('SIGKILL'), (o.seconds + 60) * 1000);
  void exited.then(() => clearTimeout(kill));
  return { child, startedAt: Date.now(), exited };
}

/** Box types at the top level of an ISO-BMFF byte string. */
export function topBoxes(b: Uint8Array): string[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: string[] = [];
  for (let at = 0; at + 8 <= b.length; ) {
    const size = v.getUint32(at);
    out.push(String.fromCharCode(...b.subarray(at + 4, at + 8)));
    if (size < 8) break;
    at += size;
  }
  return out;
}

/** The stream's current event once it is playable (polled with a deadline). */
export function playableEvent(server: ApiServer, streamId: string, timeoutMs = 20_000): Promise<AssetJson> {
  const get = async <T>(path: string) =>
    (await (await fetch(`${server.url}${path}`, { headers: server.auth })).json()) as T;
  return until(
    `the event of ${streamId} to be playable`,
    async () => {
      const cur = await get<{ currentAssetId: string | null }>(`/api/live/${streamId}`);
      const a = cur.currentAssetId ? await get<AssetJson>(`/api/assets/${cur.currentAssetId}`) : undefined;
      return a?.playable ? a : undefined;
    },
    timeoutMs,
  );
}

/** Waits (with a deadline) until a media playlist lists at least `n` whole segments; returns its text. */
export function segmentsListed(url: string, n: number, timeoutMs = 20_000): Promise<string> {
  return until(
    `${url} to list ${n} segments`,
    async () => {
      const r = await fetch(url);
      const text = r.ok ? await r.text() : '';
      return (text.match(/#EXTINF/g) ?? []).length >= n ? text : undefined;
    },
    timeoutMs,
  );
}

// Crash safety of a live event: the server is SIGKILLed mid-stream; after a restart the event is still playable to
// its last complete fragment, and the publisher's reconnect continues the same event.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { createStream, publish } from '../helpers/live.ts';
import { BIN, cli, freePort, until } from '../helpers/platform.ts';
import { fetchBytes, fetchText } from '../helpers/verify.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'smoothcast-live-crash-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

function serve(port: number, rtmpPort: number): Promise<ChildProcess> {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('SMOOTHCAST_')) delete env[k];
  env.SMOOTHCAST_LIVE_RTMP_PORT = String(rtmpPort);
  env.SMOOTHCAST_LIVE_HOST = '127.0.0.1';
  env.SMOOTHCAST_LIVE_SRT_PORTS = '29500-29519';
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--port', String(port), '--host', '127.0.0.1', '--data', dataDir],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env,
    },
  );
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
      if (out.includes('smoothcast is serving')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before serving: ${out.slice(-2000)}`)));
  });
}

it('SIGKILL mid-stream: after a restart the event plays to its last fragment and the publisher continues it', async () => {
  const [port, rtmpPort] = [await freePort(), await freePort()];
  const base = `http://127.0.0.1:${port}`;
  // An admin API token of the data folder (made by the CLI, as an operator would) to call the API with.
  const made = await cli(['token', 'create', '--name', 'tests', '--scopes', 'admin', '--data', dataDir]);
  assert.equal(made.code, 0, made.stderr);
  const auth = { authorization: `Bearer ${made.stdout.trim()}` };
  const api = async <T>(path: string) => (await (await fetch(`${base}${path}`, { headers: auth })).json()) as T;
  let server = await serve(port, rtmpPort);
  const s = await createStream({ url: base, auth }, { reconnectWindowSeconds: 60 });
  const url = `rtmp://127.0.0.1:${rtmpPort}/live/${s.streamKey}`;
  const pub = publish(url, { seconds: 30, size: '640x360' });
  const assetId = await until(
    'the event to have a few segments',
    async () => {
      const cur = await api<{ currentAssetId: string | null }>(`/api/live/${s.id}`);
      if (!cur.currentAssetId) return undefined;
      const a = await api<AssetJson>(`/api/assets/${cur.currentAssetId}`);
      if (!a.playable) return undefined;
      const m = await fetch(`${base}/v/${a.id}/master.m3u8`);
      const v0 = (await m.text()).split('\n').find((l) => l.endsWith('v0.m3u8'));
      const pl = await fetchText(`${base}/v/${a.id}/${v0}`);
      return (pl.match(/#EXTINF/g) ?? []).length >= 3 ? a.id : undefined;
    },
    30_000,
  );
  server.kill('SIGKILL');
  await new Promise((r) => server.once('exit', r));
  pub.child.kill('SIGKILL');
  await pub.exited;

  server = await serve(port, rtmpPort);
  const asset = await api<AssetJson>(`/api/assets/${assetId}`);
  assert.equal(asset.status, 'live');
  assert.equal(asset.playable, true);
  const state = await api<{
    state: string;
    reconnectDeadline: string;
  }>(`/api/live/${s.id}`);
  assert.equal(state.state, 'started', 'waiting for its publisher again');
  assert.ok(state.reconnectDeadline);
  // Every segment the playlist lists is there, whole (a torn last fragment is not listed).
  const master = await fetchText(`${base}/v/${assetId}/master.m3u8`);
  const v0 = master.split('\n').find((l) => l.endsWith('v0.m3u8'))!;
  const playlist = await fetchText(`${base}/v/${assetId}/${v0}`);
  const segs = playlist.split('\n').filter((l) => /^v0\/\d+\.m4s$/.test(l));
  assert.ok(segs.length >= 3, playlist);
  const dir = `${base}/v/${assetId}/${v0.replace(/v0\.m3u8$/, '')}`;
  for (const seg of segs) assert.ok((await fetchBytes(dir + seg)).length > 0);

  // The publisher reconnects: the same event continues after a discontinuity.
  const again = publish(url, { seconds: 6, size: '640x360' });
  await until(
    'the event to continue',
    async () => ((await fetchText(`${base}/v/${assetId}/${v0}`)).includes('#EXT-X-DISCONTINUITY\n') ? true : undefined),
    20_000,
  );
  const cur = await api<{ currentAssetId: string }>(`/api/live/${s.id}`);
  assert.equal(cur.currentAssetId, assetId);
  again.child.kill('SIGKILL');
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
});

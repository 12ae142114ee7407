// The life of an encode job when things go wrong for real: the asset is deleted while ffmpeg runs, the whole server
// dies mid-encode (a machine lost: server and ffmpeg killed), ffmpeg alone is killed (as the kernel's OOM killer
// would). No mocks: real servers, real ffmpeg, real signals; waits poll with deadlines.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDatabase } from '../../src/core/db/database.ts';
import { type Job, SqliteJobQueue } from '../../src/core/db/queue.ts';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { ffmpegFixture, testSource } from '../helpers/media.ts';
import { BIN, cli, settled, startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { decodeUrl, fetchText, parseMultivariant } from '../helpers/verify.ts';

const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest'];

/** ffmpeg/ffprobe processes (from /proc) whose command line mentions `needle` (an asset id, a data folder). */
function mediaProcesses(needle: string): { pid: number; argv: string[] }[] {
  const found: { pid: number; argv: string[] }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let raw: string;
    try {
      raw = readFileSync(`/proc/${name}/cmdline`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const argv = raw.split('\0');
    if (argv.at(-1) === '') argv.pop();
    const exe = basename(argv[0] ?? '');
    if ((exe === 'ffmpeg' || exe === 'ffprobe') && argv.some((a) => a.includes(needle))) {
      found.push({ pid: Number(name), argv });
    }
  }
  return found;
}

/** The encode (not the poster frame): the one ffmpeg that reports progress on stdout. */
function encodeProcess(needle: string): { pid: number; argv: string[] } | undefined {
  return mediaProcesses(needle).find((p) => basename(p.argv[0]!) === 'ffmpeg' && p.argv.includes('-progress'));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killAll(needle: string): void {
  for (const p of mediaProcesses(needle)) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** The encode job of an asset, read from the database file (another process may be writing it). */
async function jobOf(dataDir: string, assetId: string): Promise<Job> {
  const db = await openDatabase(join(dataDir, 'smoothcast.db'));
  try {
    const row = db.raw.prepare('SELECT id FROM jobs WHERE asset_id = ? ORDER BY id DESC LIMIT 1').get(assetId);
    assert.ok(row, `no job for asset ${assetId}`);
    const job = await new SqliteJobQueue(db).get(Number(row.id));
    assert.ok(job);
    return job;
  } finally {
    await db.close();
  }
}

async function importNoWait(dataDir: string, file: string): Promise<string> {
  const r = await cli(['import', '--data', dataDir, '--json', '--no-wait', file]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as AssetJson).id;
}

async function getJson<T>(url: string, headers: Record<string, string> = {}): Promise<T> {
  const r = await fetch(url, { headers });
  if (!r.ok) throw new Error(`GET ${url}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

/** The revision folder the asset's HLS playlists point into, and the decode of its video and audio. */
async function checkPlays(base: string, asset: AssetJson): Promise<string> {
  const masterUrl = new URL(asset.playback.hls!, base).href;
  const master = await fetchText(masterUrl);
  const rev = /^(r[0-9a-z-]+)\//m.exec(master)?.[1];
  assert.ok(rev, master);
  const { video, audio } = parseMultivariant(master, masterUrl);
  await decodeUrl(video.at(-1)!.uri);
  for (const a of audio) await decodeUrl(a);
  return rev;
}

describe('encode job life cycle', () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  let small: string;

  before(async () => {
    small = await ffmpegFixture([...testSource({ seconds: 3 }), ...x264], 'mp4');
  });

  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const d of dirs) {
      killAll(d);
      rmSync(d, { recursive: true, force: true });
    }
  });

  describe('delete while encoding', () => {
    let p: TestPlatform;
    before(async () => {
      p = await startTestPlatform();
    });
    after(async () => {
      await p?.stop();
    });

    it('stops the ffmpeg, removes the files for good, and the worker goes on to the next asset', async () => {
      // The fixture of publish.test.ts (same arguments, so one file): 60 s of 720p takes far longer to encode
      // than this test needs to find and stop it.
      const long = await ffmpegFixture([...testSource({ seconds: 60, width: 1280, height: 720 }), ...x264], 'mp4');
      const id = await importNoWait(p.dataDir, long);
      const folder = join(p.dataDir, 'media', 'assets', id);
      const running = await until('the encode ffmpeg of the asset', () => encodeProcess(id), 60_000);
      const a = await p.get<AssetJson>(`/api/assets/${id}`);
      assert.equal(a.status, 'processing');

      const del = await p.api(`/api/assets/${id}`, { method: 'DELETE' });
      assert.equal(del.status, 204);
      assert.equal((await del.arrayBuffer()).byteLength, 0);

      await until(
        'no ffmpeg of the deleted asset left',
        () => (mediaProcesses(id).length === 0 && !alive(running.pid) ? true : undefined),
        10_000,
      );
      await until('the asset folder removed', () => (existsSync(folder) ? undefined : true), 10_000);
      // After the worker has finished with the cancelled job (its clean-up ran), nothing came back.
      await until(
        'the worker idle',
        async () => ((await p.get<{ worker: { active: number } }>('/healthz')).worker.active === 0 ? true : undefined),
        10_000,
      );
      assert.ok(!existsSync(folder), 'nothing was written into the asset folder after the delete');
      const gone = await p.api(`/api/assets/${id}`);
      assert.equal(gone.status, 404);
      assert.equal(((await gone.json()) as { error: { code: string } }).error.code, 'ASSET_NOT_FOUND');
      assert.equal((await fetch(`${p.url}/v/${id}/master.m3u8`)).status, 404);
      const jobs = p.db.raw.prepare('SELECT count(*) AS n FROM jobs WHERE asset_id = ?').get(id);
      assert.equal(jobs?.n, 0, 'the job row went with the asset');

      const next = await importNoWait(p.dataDir, small);
      const done = await settled(p, next, 120_000);
      assert.equal(done.status, 'ready', JSON.stringify(done.error));
      await checkPlays(p.url, done);
      assert.ok(!existsSync(folder), 'the deleted asset stays deleted');
    });
  });

  it('retakes the job of a dead server once its lease expires, and the asset ends ready and plays', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'smoothcast-recovery-'));
    dirs.push(dataDir);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SMOOTHCAST_')) env[k] = v;
    env.SMOOTHCAST_WORKER_LEASE_SECONDS = '5';
    env.SMOOTHCAST_WORKER_POLL_MS = '100';
    // An admin API token of the data folder (made by the CLI, as an operator would) to call the API with.
    const made = await cli(['token', 'create', '--name', 'tests', '--scopes', 'admin', '--data', dataDir]);
    assert.equal(made.code, 0, made.stderr);
    const auth = { authorization: `Bearer ${made.stdout.trim()}` };

    const serve = async () => {
      const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--data', dataDir], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        out += d;
      });
      const exited = new Promise<void>((r) => child.on('exit', () => r()));
      const url = await until(
        'the serve banner',
        () => {
          if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}:\n${out}`);
          return /serving (http:\/\/\S+)/.exec(out)?.[1];
        },
        30_000,
      );
      return { child, url, exited, log: () => out };
    };

    // 20 s of 720p: a few rungs, an encode of several seconds even on a fast machine.
    const source = await ffmpegFixture([...testSource({ seconds: 20, width: 1280, height: 720 }), ...x264], 'mp4');
    const first = await serve();
    const id = await importNoWait(dataDir, source);
    await until(
      'the encode under way with some progress',
      async () => {
        const a = await getJson<AssetJson>(`${first.url}/api/assets/${id}`, auth);
        assert.notEqual(a.status, 'ready', 'the encode ended before the test could kill the server');
        return a.status === 'processing' && (a.progress?.percent ?? 0) > 0 && encodeProcess(id) ? a : undefined;
      },
      120_000,
    );

    // A machine lost: the server and its ffmpeg die together (ffmpeg shares no process group we could signal,
    // so it is found through /proc), nothing runs any clean-up.
    first.child.kill('SIGKILL');
    killAll(dataDir);
    await first.exited;
    await until('every ffmpeg of the dead server gone', () => {
      killAll(dataDir); // a child spawned in the instant before the kill
      return mediaProcesses(dataDir).length === 0 ? true : undefined;
    });
    const orphan = await jobOf(dataDir, id);
    assert.equal(orphan.state, 'running', 'the dead worker still holds the job');
    assert.equal(orphan.attempts, 1);
    assert.ok(orphan.leaseExpiresAt !== null);

    const second = await serve();
    const expiresAt = orphan.leaseExpiresAt;
    // The new worker looks for work from its start, every 100 ms: until the lease expires it must leave the job be
    // (each read below happened before the clock read that follows it, so a retake it missed came after expiry).
    await until(
      'the dead worker’s lease to expire',
      async () => {
        const j = await jobOf(dataDir, id);
        if (Date.now() >= expiresAt) return true;
        assert.equal(j.attempts, 1, 'the job was taken before its lease expired');
        return undefined;
      },
      30_000,
    );
    const done = await until(
      'the asset ready after the retake',
      async () => {
        const a = await getJson<AssetJson>(`${second.url}/api/assets/${id}`, auth);
        assert.notEqual(a.status, 'failed', JSON.stringify(a.error));
        return a.status === 'ready' ? a : undefined;
      },
      300_000,
    );
    const job = await jobOf(dataDir, id);
    assert.equal(job.state, 'done');
    assert.equal(job.attempts, 2, 'one lease lost, one retake');
    assert.equal(job.lastError?.code, 'JOB_LEASE_LOST');
    assert.ok(Math.abs((done.duration ?? 0) - 20) < 0.1, `duration ${done.duration}`);
    const rev = await checkPlays(second.url, done);
    assert.equal(rev, `r${job.id}-2`, 'the retake writes a revision of its own');
    // The dead attempt's partial files are not kept next to the good ones.
    const revs = readdirSync(join(dataDir, 'media', 'assets', id)).filter((n) => n.startsWith('r'));
    assert.deepEqual(revs, [rev], 'revision folders on disk');

    second.child.kill('SIGTERM');
    await second.exited;
    assert.equal(second.child.exitCode, 0, second.log());
  });

  describe('transient failure', () => {
    let p: TestPlatform;
    before(async () => {
      p = await startTestPlatform();
    });
    after(async () => {
      await p?.stop();
    });

    it('retries an encode whose ffmpeg was killed from outside (as by the OOM killer) and ends ready', async () => {
      const source = await ffmpegFixture([...testSource({ seconds: 30, width: 640, height: 360 }), ...x264], 'mp4');
      const id = await importNoWait(p.dataDir, source);
      const victim = await until('the encode ffmpeg', () => encodeProcess(id), 60_000);
      process.kill(victim.pid, 'SIGKILL');
      const failedAttempt = await until(
        'the attempt recorded as failed, to be retried',
        async () => {
          const j = await jobOf(p.dataDir, id);
          return j.lastError ? j : undefined;
        },
        30_000,
      );
      assert.equal(failedAttempt.lastError?.code, 'ENCODE_FAILED');
      assert.match(failedAttempt.lastError?.message ?? '', /SIGKILL/);
      assert.ok(failedAttempt.state === 'queued' || failedAttempt.attempts === 2, 'queued again with backoff');
      assert.ok(!failedAttempt.lastError?.message.includes(p.dataDir), 'no server path in the error');

      const done = await settled(p, id, 180_000);
      assert.equal(done.status, 'ready', JSON.stringify(done.error));
      const job = await jobOf(p.dataDir, id);
      assert.equal(job.state, 'done');
      assert.equal(job.attempts, 2);
      const rev = await checkPlays(p.url, done);
      assert.equal(rev, `r${job.id}-2`);
      const revs = readdirSync(join(p.dataDir, 'media', 'assets', id)).filter((n) => n.startsWith('r'));
      assert.deepEqual(revs, [rev], 'the failed attempt cleaned its files');
    });
  });
});

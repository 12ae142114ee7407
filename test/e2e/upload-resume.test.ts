// Uploads that break midway resume, never restart: (a) the server SIGKILLed during a 200 MB upload and started
// again, (b) the client's connection reset by a proxy, (c) the CLI killed and run again. Each ends with the
// stored source byte-identical (SHA-256) to the original.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Upload } from 'tus-js-client';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { BIN, cli, freePort, startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { faultProxy } from '../helpers/proxy.ts';

const MiB = 2 ** 20;

function randomFile(dir: string, bytes: number): string {
  const file = join(dir, `random-${bytes}.bin`);
  const block = randomBytes(4 * MiB);
  const out: Buffer[] = [];
  for (let n = 0; n < bytes; n += block.length) {
    out.push(Buffer.concat([randomBytes(16), block.subarray(16)]).subarray(0, Math.min(block.length, bytes - n)));
  }
  writeFileSync(file, Buffer.concat(out));
  return file;
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The stored source of an asset, as a path. */
function sourceOf(dataDir: string, assetId: string): string {
  const dir = join(dataDir, 'media', 'assets', assetId);
  return join(dir, readdirSync(dir).find((f) => f.startsWith('source'))!);
}

function serve(dataDir: string, port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [BIN, 'serve', '--port', String(port), '--host', '127.0.0.1', '--data', dataDir],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
      if (out.includes('smoothcast is serving')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before serving: ${out}`)));
  });
}

/** tus-js-client upload of a file (with the given credential headers); records the offset of every PATCH it sends. */
function upload(
  endpoint: string,
  file: string,
  headers: Record<string, string>,
  opts: { onProgress?: (sent: number) => void; retryDelays?: number[] } = {},
): Promise<{ url: string; patchOffsets: number[] }> {
  const patchOffsets: number[] = [];
  return new Promise((resolve, reject) => {
    const u: Upload = new Upload(createReadStream(file), {
      endpoint,
      headers,
      uploadSize: statSync(file).size,
      metadata: { filename: 'big.bin' },
      retryDelays: opts.retryDelays ?? [100, 250, 500, 1000, 1000, 2000, 2000, 3000, 5000, 5000],
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'PATCH') patchOffsets.push(Number(req.getHeader('Upload-Offset')));
      },
      onProgress: (sent) => opts.onProgress?.(sent),
      onError: reject,
      onSuccess: () => resolve({ url: u.url!, patchOffsets }),
    });
    u.start();
  });
}

describe('resumable uploads survive failures', () => {
  let work: string;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'sc-resume-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('(a) the server is SIGKILLed mid-upload and restarted: the client resumes, SHA-256 matches', async () => {
    const file = randomFile(work, 200 * MiB);
    const dataDir = join(work, 'data-a');
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    // An admin API token of the data folder (made by the CLI, as an operator would) to upload with.
    const made = await cli(['token', 'create', '--name', 'tests', '--scopes', 'admin', '--data', dataDir]);
    assert.equal(made.code, 0, made.stderr);
    const auth = { authorization: `Bearer ${made.stdout.trim()}` };
    let server = await serve(dataDir, port);
    let killedAt = -1;
    let restarted: Promise<void> | null = null;
    try {
      const result = await upload(`${base}/api/uploads`, file, auth, {
        onProgress: (sent) => {
          if (killedAt < 0 && sent > 60 * MiB) {
            killedAt = sent;
            const old = server;
            restarted = new Promise<void>((r) => old.once('exit', () => r())).then(async () => {
              server = await serve(dataDir, port);
            });
            old.kill('SIGKILL');
          }
        },
      });
      await restarted;
      assert.ok(killedAt > 0 && killedAt < 200 * MiB, `killed mid-upload at ${killedAt}`);
      assert.ok(
        result.patchOffsets.some((o) => o > 0),
        `resumed from the stored offset, not restarted: PATCH offsets ${result.patchOffsets}`,
      );
      const asset = (await (await fetch(`${result.url}/asset`, { headers: auth })).json()) as AssetJson;
      assert.equal(sha256(sourceOf(dataDir, asset.id)), sha256(file));
    } finally {
      server.kill('SIGKILL');
    }
  });

  describe('with an in-process server', () => {
    let p: TestPlatform;
    before(async () => {
      p = await startTestPlatform({ worker: { enabled: false } });
    });
    after(() => p?.stop());

    it('(b) the connection is reset midway: the same client resumes from the stored offset', async () => {
      const file = randomFile(work, 48 * MiB);
      const proxy = await faultProxy(p.url, { afterBytes: 20 * MiB, action: 'drop' });
      try {
        const result = await upload(`${proxy.url}/api/uploads`, file, p.auth);
        await proxy.faulted;
        const resumed = result.patchOffsets.filter((o) => o > 0);
        assert.ok(resumed.length > 0, `PATCH offsets ${result.patchOffsets}`);
        // Resumed near where the connection broke, not from 0.
        assert.ok(resumed[0]! > 10 * MiB, `resumed at ${resumed[0]}`);
        assert.ok(proxy.upstreamBytes() < 48 * MiB + 22 * MiB, 'the bytes before the reset were not sent twice');
        const asset = (await (
          await fetch(new URL(`${new URL(result.url).pathname}/asset`, p.url), { headers: p.auth })
        ).json()) as AssetJson;
        assert.equal(sha256(sourceOf(p.dataDir, asset.id)), sha256(file));
      } finally {
        await proxy.close();
      }
    });

    it('(c) the CLI is killed mid-upload; running it again resumes', async () => {
      const file = randomFile(work, 40 * MiB);
      const state = join(work, 'cli-state.json');
      const proxy = await faultProxy(p.url, { afterBytes: 12 * MiB, action: 'stall' });
      try {
        const args = [BIN, 'upload', '--server', proxy.url, '--token', p.token, '--state', state, '--json', file];
        const first = spawn(process.execPath, args, { stdio: 'ignore' });
        await proxy.faulted;
        // What arrived before the stall is on the server's disk.
        await until(
          'bytes on the server',
          () => {
            const dir = join(p.dataDir, 'uploads');
            const data = readdirSync(dir).filter((f) => !f.endsWith('.json'));
            return data.some((f) => statSync(join(dir, f)).size > 0) ? true : undefined;
          },
          10_000,
        );
        first.kill('SIGKILL');
        await new Promise((r) => first.once('exit', r));

        const second = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        second.stdout?.on('data', (d) => {
          out += d;
        });
        second.stderr?.on('data', (d) => {
          err += d;
        });
        const code = await new Promise((r) => second.once('exit', r));
        assert.equal(code, 0, err);
        const line = JSON.parse(out.trim().split('\n').at(-1)!) as AssetJson & { upload: { resumedFrom: number } };
        assert.ok(line.upload.resumedFrom > 0, `resumed from ${line.upload.resumedFrom}`);
        assert.equal(sha256(sourceOf(p.dataDir, line.id)), sha256(file));
        // Done: the remembered URL is forgotten, so a third run would upload anew.
        assert.deepEqual(JSON.parse(readFileSync(state, 'utf8')), {});
      } finally {
        await proxy.close();
      }
    });
  });
});

// The CLI as a user runs it: serve, import (waiting, with progress and playback URLs), ls, rm; and the
// configuration refusing bad values by name.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { ffmpegFixture, testSource } from '../helpers/media.ts';
import { BIN, cli, startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';

describe('smoothcast CLI', () => {
  let p: TestPlatform;
  let clip: string;

  before(async () => {
    p = await startTestPlatform();
    clip = await ffmpegFixture(
      [...testSource({ seconds: 3 }), '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-shortest'],
      'mov',
    );
  });
  after(async () => {
    await p?.stop();
  });

  it('import waits with progress until ready and prints playback URLs', async () => {
    const r = await cli(['import', '--data', p.dataDir, clip]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ready [a-z0-9]{16} /m);
    assert.match(r.stdout, /HLS: {2}http:\/\/localhost:8080\/v\/[a-z0-9]{16}\/master\.m3u8/);
    assert.match(r.stdout, /DASH: http:\/\/localhost:8080\/v\/[a-z0-9]{16}\/manifest\.mpd/);
    assert.match(r.stderr, /100% ready/, 'the progress display reached 100 %');
  });

  it('import --json prints the API object; a failed file makes the exit code non-zero', async () => {
    const junk = join(mkdtempSync(join(tmpdir(), 'sc-cli-')), 'junk.mp4');
    writeFileSync(junk, 'no video here');
    const r = await cli(['import', '--data', p.dataDir, '--json', clip, junk]);
    assert.equal(r.code, 1);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AssetJson);
    assert.deepEqual(lines.map((a) => a.status).sort(), ['failed', 'ready']);
    const failed = lines.find((a) => a.status === 'failed')!;
    assert.equal(failed.error?.code, 'MEDIA_UNREADABLE');
    const missing = await cli(['import', '--data', p.dataDir, '/nonexistent/file.mp4']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /MEDIA_NOT_FOUND/);
  });

  it('ls lists and rm deletes an asset with its files', async () => {
    const r = await cli(['import', '--data', p.dataDir, '--json', '--no-wait', clip]);
    const { id } = JSON.parse(r.stdout) as AssetJson;
    const ls = await cli(['ls', '--data', p.dataDir]);
    assert.match(ls.stdout, new RegExp(`^${id} `, 'm'));
    await until('encode to finish', async () => {
      const a = await p.get<AssetJson>(`/api/assets/${id}`);
      return a.status === 'ready' ? a : undefined;
    });
    const dir = join(p.dataDir, 'media', 'assets', id);
    assert.ok(existsSync(dir));
    const rm = await cli(['rm', '--data', p.dataDir, id]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.ok(!existsSync(dir), 'files removed');
    const res = await p.api(`/api/assets/${id}`);
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ASSET_NOT_FOUND');
    const again = await cli(['rm', '--data', p.dataDir, id]);
    assert.equal(again.code, 1);
  });

  it('serve starts on the given port, answers /healthz and stops on SIGTERM', async () => {
    const data = mkdtempSync(join(tmpdir(), 'sc-serve-'));
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--data', data]);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const url = await until('the serve banner', () => /serving (http:\/\/\S+)/.exec(out)?.[1], 30_000);
    const health = (await (await fetch(`${url}/healthz`)).json()) as { ok: boolean; ffmpeg: string };
    assert.equal(health.ok, true);
    assert.match(health.ffmpeg, /ffmpeg version/);
    const home = await fetch(`${url}/`);
    assert.match(await home.text(), /smoothcast/);
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.ok(readdirSync(data).includes('smoothcast.db'));
  });

  it('refuses an unknown setting or a bad value, naming it', async () => {
    const cfg = join(mkdtempSync(join(tmpdir(), 'sc-cfg-')), 'c.json');
    writeFileSync(cfg, JSON.stringify({ worker: { concurency: 2 } }));
    const a = await cli(['ls', '--config', cfg, '--data', p.dataDir]);
    assert.notEqual(a.code, 0);
    assert.match(a.stderr, /CONFIG_INVALID.*unknown key "worker\.concurency"/);
    writeFileSync(cfg, JSON.stringify({ worker: { concurrency: 0 } }));
    const b = await cli(['ls', '--config', cfg, '--data', p.dataDir]);
    assert.match(b.stderr, /worker\.concurrency: 0 is outside 1…64/);
    const c = await cli(['serve', '--port', 'eighty', '--data', p.dataDir]);
    assert.notEqual(c.code, 0);
    assert.match(c.stderr, /server\.port: expected a number/);
  });
});

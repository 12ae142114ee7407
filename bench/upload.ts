// npm run bench:upload — 1 GiB over loopback through smoothcast's tus endpoint and, in the same run, as a plain
// HTTP PUT to nginx (Debian, DAV module) writing to the same disk. The client is curl for both (one tus PATCH
// with the whole body vs one PUT), so the figure compares the servers. Prints MB/s of both and the ratio
// (target ≥ 0.8).
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fmt, MB, machine, outFile, startNginx, startServer } from './lib.ts';

const run = promisify(execFile);
const BYTES = Number(process.env.BENCH_UPLOAD_BYTES ?? 2 ** 30);
const ROUNDS = 2;

/** curl sending `file` with `method` to `url`; returns the HTTP status, response headers and seconds taken. */
async function curl(method: string, url: string, file: string | null, headers: Record<string, string>) {
  const args = ['-sS', '-X', method, '-D', '-', '-o', '/dev/null', '-w', '%{http_code} %{time_total}\n'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  // No "Expect: 100-continue" round trip on either side.
  args.push('-H', 'Expect:');
  if (file) args.push('-T', file); // streamed from disk
  args.push(url);
  const { stdout } = await run('curl', args, { maxBuffer: 1 << 20, timeout: 600_000 });
  const last = stdout.trim().split('\n').at(-1)!.split(' ');
  return { status: Number(last[0]), seconds: Number(last[1]), headers: stdout };
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'sc-bench-upload-'));
  try {
    console.log(`machine: ${machine()}`);
    const source = join(work, 'source.bin');
    const fd = openSync(source, 'w');
    const block = randomBytes(8 * MB);
    for (let n = 0; n < BYTES; n += block.length) writeSync(fd, block, 0, Math.min(block.length, BYTES - n));
    closeSync(fd);
    const digest = sha256(source);
    console.log(`${fmt(BYTES / MB, 0)} MiB of random bytes, ${ROUNDS} rounds each, alternating`);

    // The worker is off: this measures receiving and storing, not encoding what arrived.
    const server = await startServer(join(work, 'data'), { SMOOTHCAST_WORKER_ENABLED: 'false' });
    const root = join(work, 'static');
    mkdirSync(join(root, 'put'), { recursive: true });
    const nginx = await startNginx(root, join(work, 'nginx'), { put: true });
    const ours: number[] = [];
    const ref: number[] = [];
    let peakRss = 0;
    try {
      for (let i = 0; i < ROUNDS; i++) {
        // tus: create, then one PATCH with the whole body.
        const created = await curl('POST', `${server.url}/api/uploads`, null, {
          ...server.auth,
          'Tus-Resumable': '1.0.0',
          'Upload-Length': String(BYTES),
          'Upload-Metadata': `filename ${Buffer.from(`bench-${i}.bin`).toString('base64')}`,
        });
        const location = /^location: (\S+)/im.exec(created.headers)?.[1];
        if (created.status !== 201 || !location) throw new Error(`tus create failed: ${created.headers}`);
        const up = await curl('PATCH', new URL(location, server.url).href, source, {
          ...server.auth,
          'Tus-Resumable': '1.0.0',
          'Upload-Offset': '0',
          'Content-Type': 'application/offset+octet-stream',
        });
        const asset = /^smoothcast-asset: (\S+)/im.exec(up.headers)?.[1];
        if (up.status !== 204 || !asset) throw new Error(`tus PATCH failed: ${up.headers}`);
        ours.push(BYTES / up.seconds);

        const put = await curl('PUT', `${nginx.url}/put/bench-${i}.bin`, source, {
          'Content-Type': 'application/octet-stream',
        });
        if (put.status !== 201 && put.status !== 204) throw new Error(`nginx PUT failed: ${put.headers}`);
        ref.push(BYTES / put.seconds);
        console.log(`  round ${i + 1}: tus ${fmt(ours[i]! / MB, 0)} MB/s, nginx PUT ${fmt(ref[i]! / MB, 0)} MB/s`);

        // Both stored exactly the bytes sent.
        const stored = join(work, 'data', 'media', 'assets', asset);
        const file = readdirSync(stored).find((f) => f.startsWith('source'))!;
        if (sha256(join(stored, file)) !== digest) throw new Error('smoothcast stored different bytes');
        if (sha256(join(root, 'put', `bench-${i}.bin`)) !== digest) throw new Error('nginx stored different bytes');
        rmSync(join(root, 'put', `bench-${i}.bin`));
      }
      peakRss = server.peakRss();
    } finally {
      await nginx.stop();
      await server.stop();
    }
    const best = (xs: number[]) => Math.max(...xs);
    const ratio = best(ours) / best(ref);
    console.log(`smoothcast tus   ${fmt(best(ours) / MB, 1).padStart(8)} MB/s (best)`);
    console.log(`nginx PUT        ${fmt(best(ref) / MB, 1).padStart(8)} MB/s (best)`);
    console.log(`ratio (tus / nginx PUT): ${fmt(ratio)}  (target ≥ 0.80)`);
    console.log(`server peak RSS during uploads: ${fmt(peakRss / MB, 0)} MB`);
    writeFileSync(
      outFile('upload'),
      `${JSON.stringify({ machine: machine(), bytes: BYTES, tus: ours, nginxPut: ref, ratio, peakRss }, null, 2)}\n`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();

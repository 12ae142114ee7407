// A throwaway OpenStack Swift with its S3 API (s3api) for tests: proxy, account, container and object servers plus
// memcached on free loopback ports, one replica, every byte of state in one temp folder. Debian's packages (see
// scripts/bootstrap.sh --test); measured facts in /work/shared/notes/test-services.md.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';

const run = promisify(execFile);

export interface Swift {
  /** http://127.0.0.1:PORT of the proxy (S3 API at its root, path-style buckets). */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Kills every process and removes the folder; safe to call twice. */
  stop(): Promise<void>;
}

const BIN = '/usr/bin';
const SERVERS = ['account', 'container', 'object'] as const;
// Read by every Swift process at start-up (swift.common.utils), whatever swift_dir says; only the hash suffix
// matters to a throwaway single-replica cluster.
const SWIFT_CONF = '/etc/swift/swift.conf';
// Swift's servers switch to this user at start (setuid): the one running the tests.
const user = userInfo().username;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function checkInstalled(): void {
  const needed = [...SERVERS, 'proxy'].map((s) => `${BIN}/swift-${s}-server`);
  needed.push(`${BIN}/swift-ring-builder`, `${BIN}/memcached`);
  const missing = needed.filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(
      `OpenStack Swift is not installed (missing ${missing.join(', ')}): run sh scripts/bootstrap.sh --test`,
    );
  }
  if (!existsSync(SWIFT_CONF)) {
    if (process.getuid?.() !== 0) {
      throw new Error(`${SWIFT_CONF} is missing (Swift reads it at start): create it as root`);
    }
    mkdirSync('/etc/swift', { recursive: true });
    writeFileSync(SWIFT_CONF, '[swift-hash]\nswift_hash_path_suffix = smoothcast-test\n');
  }
}

// Every server runs under a small sh watchdog that SIGKILLs it when our end of the watchdog's stdin pipe closes,
// which the kernel does however this process ends (even on SIGKILL), so a crashed test never leaves Swift running.
// Killing a process group would not do: Swift's servers call setsid() (swift.common.utils.drop_privileges).
const WATCHDOG = `exec 3<&0
"$@" 3<&- &
p=$!
{ read -r _ <&3; kill -9 "$p"; } 2>/dev/null &
w=$!
wait "$p"; s=$?
kill "$w" 2>/dev/null
exit "$s"`;

interface Proc {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<void>;
  code: number | null | undefined;
}

function startProc(name: string, dir: string, argv: string[]): Proc {
  const log = join(dir, `${name}.log`);
  const fd = openSync(log, 'a');
  const child = spawn('/bin/sh', ['-c', WATCHDOG, 'sh', ...argv], { stdio: ['pipe', fd, fd] });
  closeSync(fd);
  // The pipe and the child must not keep the test process alive on their own.
  child.unref();
  (child.stdin as unknown as { unref(): void }).unref();
  const p: Proc = { name, child, log, exited: Promise.resolve(), code: undefined };
  p.exited = new Promise((resolve) => {
    child.once('exit', (code) => {
      p.code = code;
      resolve();
    });
  });
  return p;
}

/** Has the watchdog kill its server (synchronous, so it also works in an 'exit' handler). */
function kill(p: Proc): void {
  p.child.stdin?.destroy();
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

async function buildRing(etc: string, kind: string, port: number): Promise<void> {
  const builder = join(etc, `${kind}.builder`);
  // part_power 6 (64 partitions), 1 replica, min_part_hours 1: the smallest ring that places everything on d1.
  await run(`${BIN}/swift-ring-builder`, [builder, 'create', '6', '1', '1']);
  await run(`${BIN}/swift-ring-builder`, [builder, 'add', `r1z1-127.0.0.1:${port}/d1`, '100']);
  await run(`${BIN}/swift-ring-builder`, [builder, 'rebalance']);
}

function serverConf(dir: string, kind: string, port: number): string {
  return `[DEFAULT]
devices = ${dir}/srv
mount_check = false
disable_fallocate = true
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
swift_dir = ${dir}/etc
user = ${user}
log_level = WARNING

[pipeline:main]
pipeline = healthcheck ${kind}-server

[filter:healthcheck]
use = egg:swift#healthcheck

[app:${kind}-server]
use = egg:swift#${kind}
${
  kind === 'object'
    ? // The object server updates the container listing inline, for at most this long before answering (then in
      // the background): a long wait keeps listings right after writes exact, which the tests rely on.
      'container_update_timeout = 10\n'
    : ''
}`;
}

function proxyConf(dir: string, port: number, memcachedPort: number): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
swift_dir = ${dir}/etc
user = ${user}
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
max_upload_part_num = 10000

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${memcachedPort}

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
`;
}

async function healthy(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/healthcheck`, { signal: AbortSignal.timeout(1000) });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

/**
 * Starts Swift with its state in a new folder (in `workDir`, else the system's temp folder; stop() removes it).
 * Resolves once S3 requests work.
 */
export async function startSwift(workDir?: string, timeoutMs = 40_000): Promise<Swift> {
  checkInstalled();
  if (workDir) mkdirSync(workDir, { recursive: true });
  const dir = mkdtempSync(join(workDir ?? tmpdir(), 'sc-swift-'));
  mkdirSync(join(dir, 'etc'), { recursive: true });
  mkdirSync(join(dir, 'srv', 'd1'), { recursive: true });
  const [proxyPort, memcachedPort, ...ports] = await Promise.all([1, 2, 3, 4, 5].map(() => freePort()));
  const portOf = (i: number) => ports[i] as number;
  const procs: Proc[] = [];
  let stopped = false;
  const killAll = () => {
    for (const p of procs) kill(p);
  };
  process.once('exit', killAll);
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const p of procs) p.child.ref(); // wait for the exits below
    killAll();
    const gone = Promise.all(procs.map((p) => p.exited));
    const late = setTimeout(() => {
      for (const p of procs) p.child.kill('SIGKILL');
    }, 5000);
    await gone;
    clearTimeout(late);
    process.off('exit', killAll);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(SERVERS.map((kind, i) => buildRing(join(dir, 'etc'), kind, portOf(i))));
    const mem = ['-l', '127.0.0.1', '-p', String(memcachedPort), '-U', '0', '-m', '16'];
    procs.push(
      startProc('memcached', dir, [`${BIN}/memcached`, ...mem, ...(process.getuid?.() === 0 ? ['-u', 'root'] : [])]),
    );
    SERVERS.forEach((kind, i) => {
      const conf = join(dir, 'etc', `${kind}-server.conf`);
      writeFileSync(conf, serverConf(dir, kind, portOf(i)));
      procs.push(startProc(kind, dir, [`${BIN}/swift-${kind}-server`, conf, '-v']));
    });
    const conf = join(dir, 'etc', 'proxy-server.conf');
    writeFileSync(conf, proxyConf(dir, proxyPort as number, memcachedPort as number));
    procs.push(startProc('proxy', dir, [`${BIN}/swift-proxy-server`, conf, '-v']));

    const endpoint = `http://127.0.0.1:${proxyPort}`;
    const swift = { endpoint, region: 'us-east-1', accessKeyId: 'test:tester', secretAccessKey: 'testing', stop };
    const client = new S3Client({
      endpoint,
      region: swift.region,
      forcePathStyle: true,
      credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey },
      maxAttempts: 1,
    });
    const deadline = Date.now() + timeoutMs;
    let delay = 50;
    let last = '';
    try {
      for (;;) {
        const dead = procs.find((p) => p.code !== undefined);
        if (dead) throw new Error(`Swift's ${dead.name} exited (${dead.code}) while starting:\n${tail(dead.log)}`);
        const up = await Promise.all([proxyPort as number, ...ports].map(healthy));
        if (up.every(Boolean)) {
          try {
            // The whole path (s3api signature check through tempauth and memcached, account autocreate).
            await client.send(new ListBucketsCommand({}), { abortSignal: AbortSignal.timeout(3000) });
            return swift;
          } catch (err) {
            last = String(err);
          }
        }
        if (Date.now() > deadline) {
          throw new Error(
            `Swift not healthy after ${timeoutMs} ms (${last || 'health checks failing'}):\n${tail(join(dir, 'proxy.log'))}`,
          );
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(250, delay * 2);
      }
    } finally {
      client.destroy();
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

// A smoothcast cluster on one box for the scale-out tests and bench:scale: a throwaway PostgreSQL and Swift (S3),
// and any number of `smoothcast serve --roles …` processes against them, each its own OS process with its own
// data folder (scratch), all sharing the database, the bucket and the master key — as separate machines would.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import { BIN, until } from './platform.ts';
import { type Postgres, startPostgres } from './services/postgres.ts';
import { startSwift } from './services/swift.ts';

const run = promisify(execFile);

export interface ClusterNode {
  roles: string;
  url: string;
  proc: ChildProcess;
  /** Every line the process printed (JSON logs and the rest). */
  lines: string[];
  exited: Promise<number | null>;
  /** Stops it gracefully (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
}

export interface Cluster {
  pg: Postgres;
  env: Record<string, string>;
  token: string;
  s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string; bucket: string };
  nodes: ClusterNode[];
  start(roles: string, env?: Record<string, string>): Promise<ClusterNode>;
  /** A client of the cluster's bucket (configured for Swift's quirks, as the nodes are). */
  s3Client(): S3Client;
  /** Runs `smoothcast ARGS` against the cluster's database and storage. */
  cli(args: string[], input?: string): Promise<string>;
  stop(): Promise<void>;
}

let srtBase = 30000 + ((process.pid * 40) % 20000);

export async function startCluster(extraEnv: Record<string, string> = {}): Promise<Cluster> {
  const [pg, swift] = await Promise.all([startPostgres(), startSwift()]);
  const dbUrl = await pg.createDatabase();
  const bucket = `sc${randomBytes(4).toString('hex')}`;
  const dirs: string[] = [];
  const env: Record<string, string> = {
    SMOOTHCAST_DATABASE_URL: dbUrl,
    SMOOTHCAST_DATABASE_POOL_SIZE: '5',
    SMOOTHCAST_STORAGE_BACKEND: 's3',
    SMOOTHCAST_STORAGE_S3_ENDPOINT: swift.endpoint,
    SMOOTHCAST_STORAGE_S3_REGION: swift.region,
    SMOOTHCAST_STORAGE_S3_BUCKET: bucket,
    SMOOTHCAST_STORAGE_S3_ACCESS_KEY_ID: swift.accessKeyId,
    SMOOTHCAST_STORAGE_S3_SECRET_ACCESS_KEY: swift.secretAccessKey,
    SMOOTHCAST_SECURITY_MASTER_KEY: randomBytes(32).toString('hex'),
    SMOOTHCAST_WORKER_POLL_MS: '100',
    ...extraEnv,
  };
  const childEnv = (dataDir: string, more: Record<string, string> = {}) => ({
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    ...env,
    SMOOTHCAST_STORAGE_DATA_DIR: dataDir,
    ...more,
  });
  const newDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'sc-node-'));
    dirs.push(d);
    return d;
  };
  const cliDir = newDir();
  const cli = async (args: string[], input?: string) => {
    const child = run(process.execPath, [BIN, ...args], { env: childEnv(cliDir), timeout: 120_000 });
    if (input !== undefined) {
      child.child.stdin?.end(input);
    }
    return (await child).stdout;
  };
  await cli(['migrate']);
  await cli(['user', 'add', 'admin', '--admin', '--password-stdin'], 'correct horse battery staple\n');
  const token = (
    JSON.parse(await cli(['token', 'create', '--name', 'cluster', '--scopes', 'admin', '--json'])) as {
      secret: string;
    }
  ).secret;
  const nodes: ClusterNode[] = [];
  const cluster: Cluster = {
    pg,
    env,
    token,
    s3: { ...swift, bucket },
    nodes,
    s3Client: () =>
      new S3Client({
        endpoint: swift.endpoint,
        region: swift.region,
        forcePathStyle: true,
        credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
    async start(roles, more = {}) {
      const dataDir = newDir();
      const srt = `${srtBase}-${srtBase + 9}`;
      srtBase += 10;
      const proc = spawn(process.execPath, [BIN, 'serve', '--roles', roles, '--port', '0', '--host', '127.0.0.1'], {
        env: childEnv(dataDir, {
          SMOOTHCAST_DATABASE_MIGRATE: 'false',
          SMOOTHCAST_LIVE_RTMP_PORT: '0',
          SMOOTHCAST_LIVE_SRT_PORTS: srt,
          ...more,
        }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const lines: string[] = [];
      let url = '';
      const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
      const onData = (chunk: Buffer) => {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (!line) continue;
          lines.push(line);
          if (process.env.SC_TEST_LOG) console.log(`[${roles}] ${line}`);
          const m = /smoothcast is serving (http:\/\/\S+)/.exec(line);
          if (m) url = m[1]!;
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      let dead = false;
      void exited.then(() => {
        dead = true;
      });
      await until(
        `${roles} node start`,
        () => {
          if (dead) throw new Error(`${roles} node exited at start:\n${lines.slice(-20).join('\n')}`);
          return url || undefined;
        },
        60_000,
      );
      const node: ClusterNode = {
        roles,
        url,
        proc,
        lines,
        exited,
        async stop() {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
          await exited;
        },
      };
      nodes.push(node);
      return node;
    },
    cli,
    async stop() {
      for (const n of nodes) if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill('SIGKILL');
      await Promise.all(nodes.map((n) => n.exited));
      await swift.stop();
      await pg.stop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
  return cluster;
}

// A real platform for end-to-end tests: the server on port 0 over a fresh data folder, the CLI as a child process.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type ConfigInput, loadConfig } from '../../src/core/config.ts';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { type Platform, startPlatform } from '../../src/roles/server.ts';

const run = promisify(execFile);
export const BIN = fileURLToPath(new URL('../../bin/smoothcast.js', import.meta.url));

export interface TestPlatform extends Platform {
  dataDir: string;
  /** An admin API token (every scope): tests call the API as an admin unless they test access itself. */
  token: string;
  /** `{ authorization: 'Bearer …' }` with that token. */
  auth: Record<string, string>;
  /** The admin user ("admin", password ADMIN_PASSWORD) and a login session of it, for browser tests. */
  admin: { id: string; name: string; cookie: string; csrf: string };
  /** Server log lines (JSON). */
  logs: readonly string[];
  get<T = unknown>(path: string): Promise<T>;
  /** fetch(url + path) as the admin (token added unless init sets authorization). */
  api(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

export const ADMIN_PASSWORD = 'correct horse battery staple';
/** Cheap password hashing for test users (the OWASP cost is checked in secrets.test.ts). */
export const TEST_SCRYPT = { N: 1024, r: 8, p: 1 };

/** A block of 20 UDP ports for this test process's SRT listeners (pid-based, so parallel test files differ). */
function srtRange(): string {
  const from = 20000 + ((process.pid * 20) % 20000);
  return `${from}-${from + 19}`;
}

export async function startTestPlatform(
  overrides: ConfigInput = {},
  options: { noAdmin?: boolean } = {},
): Promise<TestPlatform> {
  const dataDir = mkdtempSync(join(tmpdir(), 'smoothcast-e2e-'));
  const config = loadConfig({
    env: {},
    overrides: {
      ...overrides,
      server: { host: '127.0.0.1', port: 0, ...overrides.server },
      storage: { ...overrides.storage, dataDir },
      worker: { pollMs: 100, ...overrides.worker },
      // Tests run side by side: any free RTMP port, and SRT ports of this process's own.
      live: { rtmpPort: 0, srtPorts: srtRange(), ...overrides.live },
    },
  });
  const logs: string[] = [];
  const p = await startPlatform(config, (msg, extra) => {
    logs.push(JSON.stringify({ msg, ...extra }));
    if (process.env.SC_TEST_LOG) console.log(msg, extra ?? '');
  });
  // An admin and its credentials; first-run tests start with no user at all (the setup code stays valid).
  let admin = { id: '', name: '', cookie: '', csrf: '' };
  let token = '';
  if (!options.noAdmin) {
    const user = await p.accounts.addUser('admin', ADMIN_PASSWORD, 'admin', TEST_SCRYPT);
    token = (await p.accounts.createToken({ name: 'tests', scopes: ['admin'], userId: user.id, expiresAt: null }))
      .secret;
    const session = await p.accounts.createSession(user.id, 3600_000);
    admin = { id: user.id, name: user.name, cookie: session.cookie, csrf: session.csrf };
  }
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const api = (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (token && !headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
    return fetch(p.url + path, { ...init, headers });
  };
  return Object.assign(p, {
    dataDir,
    token,
    auth,
    admin,
    logs,
    api,
    async get<T>(path: string): Promise<T> {
      const r = await api(path);
      if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
      return (await r.json()) as T;
    },
    async stop() {
      await p.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

/** Runs `smoothcast …` as a child process (as a user would) and returns its output. */
export async function cli(args: readonly string[], opts: { timeoutMs?: number } = {}) {
  try {
    const r = await run(process.execPath, [BIN, ...args], { timeout: opts.timeoutMs ?? 120_000, env: cliEnv() });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function cliEnv(): NodeJS.ProcessEnv {
  // The CLI must not inherit test-only variables that its config would reject.
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('SMOOTHCAST_') && k !== 'SMOOTHCAST_CONFIG') delete env[k];
  return env;
}

/** Polls `fn` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(500, delay * 2);
  }
}

/** `smoothcast import --json --no-wait FILE` into the platform's data folder; the asset once ready or failed. */
export async function importSettled(p: TestPlatform, file: string, timeoutMs?: number): Promise<AssetJson> {
  const r = await cli(['import', '--data', p.dataDir, '--json', '--no-wait', file]);
  if (r.code !== 0) throw new Error(`smoothcast import ${file} exited ${r.code}: ${r.stderr}`);
  return settled(p, (JSON.parse(r.stdout) as AssetJson).id, timeoutMs);
}

/** Waits until the asset is ready or failed and returns it. */
export function settled(p: TestPlatform, id: string, timeoutMs = 300_000): Promise<AssetJson> {
  return until(
    `asset ${id} to be ready or failed`,
    async () => {
      const a = await p.get<AssetJson>(`/api/assets/${id}`);
      return a.status === 'ready' || a.status === 'failed' ? a : undefined;
    },
    timeoutMs,
  );
}

/** A TCP port nothing listens on right now (for servers that cannot be told to pick one themselves). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

// A throwaway PostgreSQL cluster for the tests: Debian's postgresql (installed by `scripts/bootstrap.sh --test`),
// initdb into a temp folder, listening only on a unix socket in that folder (no TCP port to collide on), fsync off.
// Facts measured on these machines are in ../shared/notes/test-services.md (initdb ≈ 1.2 s, start ≈ 0.1 s).
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Postgres {
  /** A postgres:// URL for a fresh database of its own (`createDatabase`) or the default `postgres` one. */
  url: string;
  socketDir: string;
  /** Creates an empty database and returns its URL (each test file or case can have a clean catalog). */
  createDatabase(name?: string): Promise<string>;
  /** Stops the server at once (`pg_ctl -m immediate`), as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on the same data folder after kill(). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(
      'PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run sh scripts/bootstrap.sh --test',
    );
  }
  return join(root, versions[0]!, 'bin');
}

const live = new Set<Postgres>();
process.on('exit', () => {
  for (const pg of live) {
    // Synchronous at exit: an immediate stop so no postgres outlives the test process.
    spawnSync(
      'runuser',
      ['-u', 'postgres', '--', join(binDir(), 'pg_ctl'), '-D', join(pg.socketDir, 'data'), '-m', 'immediate', 'stop'],
      { stdio: 'ignore' },
    );
  }
});

let dbCount = 0;

export async function startPostgres(): Promise<Postgres> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'sc-pg-'));
  const asRoot = process.getuid?.() === 0;
  // The server refuses to run as root: as root, the cluster belongs to the `postgres` user the package made.
  const as = (cmd: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]) : run(join(bin, cmd), args);
  if (asRoot) {
    const uid = Number(spawnSync('id', ['-u', 'postgres']).stdout.toString().trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres']).stdout.toString().trim());
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
  }
  const data = join(dir, 'data');
  await as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8']);
  const start = () =>
    as('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'log'),
      '-w',
      '-t',
      '60',
      'start',
      '-o',
      `-c listen_addresses='' -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`,
    ]);
  await start();
  const urlFor = (db: string) => `postgres://postgres@localhost/${db}?host=${encodeURIComponent(dir)}`;
  let stopped = false;
  const pg: Postgres = {
    url: urlFor('postgres'),
    socketDir: dir,
    async createDatabase(name = `t${process.pid}_${++dbCount}`) {
      await as('createdb', ['-h', dir, '-U', 'postgres', name]);
      return urlFor(name);
    },
    async kill() {
      await as('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
    },
    async restart() {
      await start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      live.delete(pg);
      await as('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(pg);
  return pg;
}

// Child process of queue.test.ts's cross-process race: opens its own connection to the shared file, waits for the
// parent's "go" on stdin, then leases and completes jobs until none is left, printing one line per lease.
import { openDatabase } from './database.ts';
import { SqliteJobQueue } from './queue.ts';

const [path, owner] = process.argv.slice(2);
if (path === undefined || owner === undefined) throw new Error('usage: queue-race-child.ts DB OWNER');

const db = openDatabase(path);
const queue = new SqliteJobQueue(db);
const pause = new Int32Array(new SharedArrayBuffer(4));

process.stdout.write('ready\n');
process.stdin.once('data', () => {
  const leased: number[] = [];
  for (;;) {
    const job = queue.lease(owner, 60_000);
    if (job === null) break;
    leased.push(job.id);
    // "Work" outside any transaction, so the other process gets its turn at the write lock.
    Atomics.wait(pause, 0, 0, 1);
    if (!queue.heartbeat(job.id, owner, 60_000) || !queue.complete(job.id, owner)) {
      throw new Error(`job ${job.id} was taken from ${owner}`);
    }
  }
  db.close();
  process.stdout.write(`${JSON.stringify(leased)}\n`);
  process.stdin.destroy();
});

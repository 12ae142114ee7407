// Child process of queue.test.ts's cross-process race: opens its own connection to the shared database (a SQLite
// file or a PostgreSQL URL), waits for the parent's "go" on stdin, then leases and completes jobs until none is
// left, printing the ids it leased.
import { setTimeout as delay } from 'node:timers/promises';
import { openDatabase } from './database.ts';
import { SqliteJobQueue } from './queue.ts';

const [target, owner] = process.argv.slice(2);
if (target === undefined || owner === undefined) throw new Error('usage: queue-race-child.ts DB OWNER');

const db = await openDatabase(target);
const queue = new SqliteJobQueue(db);

process.stdout.write('ready\n');
process.stdin.once('data', async () => {
  const leased: number[] = [];
  for (;;) {
    const job = await queue.lease(owner, 60_000);
    if (job === null) break;
    leased.push(job.id);
    // "Work" outside any transaction, so the other processes get their turn.
    await delay(1);
    if (!(await queue.heartbeat(job, 60_000)) || !(await queue.complete(job))) {
      throw new Error(`job ${job.id} was taken from ${owner}`);
    }
  }
  await db.close();
  process.stdout.write(`${JSON.stringify(leased)}\n`);
  process.stdin.destroy();
});

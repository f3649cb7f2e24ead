/**
 * A process with one BullMQ worker that is closed by closeWorker while its job runs; run by
 * test/integration/worker-close.test.ts. Arguments: the Redis URL, `hangs` (the job never ends) or
 * `finishes` (it ends after 300 ms), and the grace in ms. Prints one JSON line with what
 * closeWorker returned and the job's state, then lets the process end on its own: whatever the
 * close leaves running keeps it alive, which is what the test looks for.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { closeWorker, JobsInProgress } from '../../src/queue/worker-close.js';

const [url, mode, grace] = process.argv.slice(2);
if (!url || (mode !== 'hangs' && mode !== 'finishes') || !grace) throw new Error('usage: closing-worker.ts <redis-url> hangs|finishes <grace-ms>');
const prefix = `tclose${process.pid}`;
const connection = new Redis(url, { maxRetriesPerRequest: null });
// As in workers/: the worker's own connection, dropped by its owner after the close.
const workerConnection = new Redis(url, { maxRetriesPerRequest: null });
const queue = new Queue('close-me', { connection, prefix });
const jobs = new JobsInProgress();
let started!: () => void;
const running = new Promise<void>((r) => (started = r));
const worker = new Worker('close-me', jobs.track(async () => {
  started();
  // A job that never ends: a promise nobody settles (it holds nothing that keeps a process alive).
  if (mode === 'hangs') await new Promise<void>(() => undefined);
  else await new Promise<void>((r) => setTimeout(r, 300));
  return 'done';
}), { connection: workerConnection, prefix, autorun: true });
const job = await queue.add('one', {});
await running;
const finished = await closeWorker(worker, jobs, Number(grace));
const state = await job.getState();
process.stdout.write(`${JSON.stringify({ finished, state, running: jobs.count })}\n`);
await queue.close();
workerConnection.disconnect();
connection.disconnect();

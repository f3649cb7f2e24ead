/**
 * A process with one BullMQ worker (startWorker, as workers/ start theirs) closed while its job runs; run by
 * test/integration/worker-close.test.ts. Arguments: the Redis URL, `hangs` (the job never ends) or
 * `finishes` (it ends after 300 ms), and the grace in ms. Prints one JSON line with what
 * close() returned and the job's state, then lets the process end on its own: whatever the
 * close leaves running keeps it alive, which is what the test looks for.
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startWorker } from '../../src/queue/worker-close.js';

const [url, mode, grace] = process.argv.slice(2);
if (!url || (mode !== 'hangs' && mode !== 'finishes') || !grace) throw new Error('usage: closing-worker.ts <redis-url> hangs|finishes <grace-ms>');
const prefix = `tclose${process.pid}`;
const connection = new Redis(url, { maxRetriesPerRequest: null });
const queue = new Queue('close-me', { connection, prefix });
let started!: () => void;
const running = new Promise<void>((r) => (started = r));
let inProcessor = 0;
// As in workers/: the worker on a connection of its own, which its close drops.
const worker = startWorker('close-me', async () => {
  inProcessor += 1;
  started();
  // A job that never ends: a promise nobody settles (it holds nothing that keeps a process alive).
  if (mode === 'hangs') await new Promise<void>(() => undefined);
  else await new Promise<void>((r) => setTimeout(r, 300));
  inProcessor -= 1;
  return 'done';
}, new Redis(url, { maxRetriesPerRequest: null }), { prefix, autorun: true });
const job = await queue.add('one', {});
await running;
const finished = await worker.close(Number(grace));
const state = await job.getState();
process.stdout.write(`${JSON.stringify({ finished, state, running: inProcessor })}\n`);
await queue.close();
connection.disconnect();

/**
 * startWorker's bounded close (src/queue/worker-close.ts) against a real Redis: a worker whose job never ends is
 * closed after its grace and leaves nothing behind that keeps the process alive (BullMQ's own
 * close, abandoned after a timeout, left its lock-renewal timer running and the process with it);
 * a job that ends within the grace is waited for and completed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { exited, firstLine } from '../support/child.js';
import { startRedis, type RedisServer } from '../support/redis.js';

const SCRIPT = fileURLToPath(new URL('../support/closing-worker.ts', import.meta.url));
/** Far longer than the process needs once closed; only a process that never ends reaches it. */
const NEVER_MS = 30_000;

async function runClosing(url: string, mode: 'hangs' | 'finishes'): Promise<{ report: { finished: boolean; state: string; running: number }; endedOnItsOwn: boolean }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, url, mode, '500'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const report = JSON.parse(await firstLine(child)) as { finished: boolean; state: string; running: number };
  let timer: NodeJS.Timeout | undefined;
  const endedOnItsOwn = await Promise.race([exited(child).then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), NEVER_MS)))]);
  clearTimeout(timer);
  if (!endedOnItsOwn) child.kill('SIGKILL');
  return { report, endedOnItsOwn };
}

describe('closing a BullMQ worker within a grace', { timeout: 120_000 }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  it('a job that never ends: close reports it unfinished, and the process still ends on its own', async () => {
    const { report, endedOnItsOwn } = await runClosing(redis.url, 'hangs');
    assert.equal(report.finished, false);
    assert.equal(report.running, 1, 'the job is still running in the process when the worker is closed');
    assert.equal(report.state, 'active', 'left for the stalled check of the next worker, not completed or failed');
    assert.ok(endedOnItsOwn, 'something the closed worker left running kept the process alive');
  });

  it('a job that ends within the grace is waited for and completed', async () => {
    const { report, endedOnItsOwn } = await runClosing(redis.url, 'finishes');
    assert.equal(report.finished, true);
    assert.equal(report.running, 0);
    assert.equal(report.state, 'completed');
    assert.ok(endedOnItsOwn);
  });
});

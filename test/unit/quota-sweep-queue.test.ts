/** The quota sweep job: its payload, its retry settings, and when a sweep counts as failed. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sweepFailed } from '../../src/alerts/sweep.js';
import { QUOTA_SWEEP_ATTEMPTS, quotaSweepBackoffMs, quotaSweepJobOptions, quotaSweepJobSchema } from '../../src/queue/quota-queue.js';

describe('quota sweep job', () => {
  it('retries fit inside the period, between 250 ms and a minute for the first', () => {
    assert.equal(quotaSweepBackoffMs(1), 250);
    assert.equal(quotaSweepBackoffMs(4), 1_000);
    assert.equal(quotaSweepBackoffMs(900), 60_000);
    assert.equal(quotaSweepBackoffMs(86_400), 60_000);
    for (const seconds of [1, 2, 3, 10, 60, 239, 240, 241, 900, 3_600, 86_400]) {
      const first = quotaSweepBackoffMs(seconds);
      // Exponential: the retries wait `first`, then twice that.
      assert.ok(first + 2 * first <= seconds * 1000 * 0.75, `${seconds} s: ${first} ms`);
    }
  });

  it('is tried a few times, kept when it failed, trimmed when done', () => {
    const opts = quotaSweepJobOptions(900);
    assert.equal(opts.attempts, QUOTA_SWEEP_ATTEMPTS);
    assert.ok(QUOTA_SWEEP_ATTEMPTS > 1);
    assert.deepEqual(opts.backoff, { type: 'exponential', delay: 60_000 });
    assert.deepEqual(opts.removeOnFail, { count: 1_000 });
    assert.deepEqual(opts.removeOnComplete, { count: 100 });
  });

  it('payload: the period, nothing else', () => {
    assert.deepEqual(quotaSweepJobSchema.parse({ everySeconds: 900 }), { everySeconds: 900 });
    for (const bad of [{}, { everySeconds: 0 }, { everySeconds: 1.5 }, { everySeconds: 86_401 }, { everySeconds: '900' }, { everySeconds: 900, extra: 1 }]) {
      assert.equal(quotaSweepJobSchema.safeParse(bad).success, false, JSON.stringify(bad));
    }
  });

  it('a sweep fails only when every account it tried failed', () => {
    assert.equal(sweepFailed({ accounts: 3, read: 0, unreadable: 0, failed: 3 }), true);
    assert.equal(sweepFailed({ accounts: 3, read: 0, unreadable: 0, failed: 1 }), true, 'stopped after one: nothing read');
    assert.equal(sweepFailed({ accounts: 3, read: 2, unreadable: 0, failed: 1 }), false);
    assert.equal(sweepFailed({ accounts: 3, read: 0, unreadable: 2, failed: 1 }), false, 'the server answered for two');
    assert.equal(sweepFailed({ accounts: 0, read: 0, unreadable: 0, failed: 0 }), false, 'no accounts: nothing to retry');
    assert.equal(sweepFailed({ accounts: 3, read: 3, unreadable: 0, failed: 0 }), false);
  });
});

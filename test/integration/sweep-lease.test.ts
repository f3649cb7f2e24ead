/**
 * The sweep lease on real Redis: of several processes ticking on one Redis, one takes the lease
 * and sweeps, the others skip; once the lease has run out, the next tick of any process takes it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { sweepLeaseKey, takeSweepLease } from '../../src/queue/sweep-lease.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

describe('sweep lease', { timeout: 60_000 }, () => {
  let server: RedisServer;
  let a: Redis;
  let b: Redis;

  before(async () => {
    server = await startRedis();
    a = new Redis(server.url);
    b = new Redis(server.url);
  });
  after(async () => {
    a?.disconnect();
    b?.disconnect();
    await server?.stop();
  });

  it('one taker per lease; free again before the next interval ends', async () => {
    const intervalMs = 1_000;
    assert.equal(await takeSweepLease(a, 'sl', intervalMs), true);
    assert.equal(await takeSweepLease(b, 'sl', intervalMs), false);
    assert.equal(await takeSweepLease(a, 'sl', intervalMs), false, 'not twice in one interval by the same process either');
    const ttl = await a.pttl(sweepLeaseKey('sl'));
    assert.ok(ttl > 0 && ttl < intervalMs, `the lease lasts less than the interval (${ttl} ms)`);
    await waitFor('the lease taken by the other process once it ran out', () => takeSweepLease(b, 'sl', intervalMs), { timeoutMs: 30_000, intervalMs: 50 });
    assert.equal(await takeSweepLease(a, 'sl', intervalMs), false);
  });
});

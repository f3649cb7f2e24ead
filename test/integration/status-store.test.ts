/**
 * The status page's records in a real Redis: a failure keeps what the last reconcile saw, a
 * reconcile clears the failure, change-to-lamp samples are measured from the change and kept to a
 * bounded list, and a damaged record shows as unknown instead of breaking the page.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { LATENCY_SAMPLES, StatusStore } from '../../src/status/status-store.js';
import { startRedis, type RedisServer } from '../support/redis.js';

describe('status store in Redis', () => {
  let server: RedisServer;
  let redis: Redis;
  let store: StatusStore;
  const ref = { context: 'default', mailbox: '100' };
  before(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
    store = new StatusStore(redis, 'tstatus');
  });
  after(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('a failure keeps the last reconcile; the next reconcile clears it', async () => {
    await store.reconciled(ref, { at: 1000, ms: 12.6, store: 2, imap: 1, applied: 1, counts: { new: 1, old: 1, urgent: 0 } });
    await store.failed(ref, 'IMAP unreachable\nsecond line', 2000);
    let b = (await store.read()).boxes.get('100@default');
    assert.deepEqual(b, { reconciledAt: 1000, ms: 13, store: 2, imap: 1, applied: 1, counts: { new: 1, old: 1, urgent: 0 }, failedAt: 2000, error: 'IMAP unreachable' });
    await store.reconciled(ref, { at: 3000, ms: 5, store: 2, imap: 2, applied: 0 });
    b = (await store.read()).boxes.get('100@default');
    assert.deepEqual(b, { reconciledAt: 3000, ms: 5, store: 2, imap: 2, applied: 0 });
  });

  it('change-to-lamp is measured from when the change was heard; no change heard, no sample; the list is bounded', async () => {
    const other = { context: 'default', mailbox: '101' };
    assert.equal(await store.published('phones', other, 5000), undefined);
    await store.heard(other, 4000);
    assert.deepEqual(await store.published('phones', other, 4250), { at: 4250, target: 'phones', ms: 250 });
    for (let i = 0; i < LATENCY_SAMPLES + 20; i++) await store.published('phones', other, 5000 + i);
    const { latency } = await store.read();
    assert.equal(latency.length, LATENCY_SAMPLES);
    assert.equal(latency[0]?.at, 5000 + LATENCY_SAMPLES + 19, 'newest first');
  });

  it('quota readings by IMAP user; damaged records are left out, not thrown', async () => {
    await store.quotaRead('u100', [{ resource: 'STORAGE', usage: 10, limit: 100 }], 7000);
    await redis.hset('tstatus:status:box', 'bad@default', '{not json');
    await redis.hset('tstatus:status:quota', 'ubad', JSON.stringify({ at: 'yesterday' }));
    await redis.lpush('tstatus:status:latency', '{"at":1,"target":"x","ms":-5}');
    const snap = await store.read();
    assert.deepEqual(snap.quota.get('u100'), { at: 7000, readings: [{ resource: 'STORAGE', usage: 10, limit: 100 }] });
    assert.equal(snap.boxes.has('bad@default'), false);
    assert.equal(snap.quota.has('ubad'), false);
    assert.ok(snap.latency.every((s) => s.ms >= 0));
  });
});

/**
 * The whole service on a three-node Redis Cluster (test/support/redis.ts, no replicas) with the
 * hash-tagged prefix {vmbt}: a voicemail becomes its email, a mail client's read reaches the
 * spool through IDLE, every key of the installation (BullMQ's too) is in the one slot of the tag
 * on one node, and the service goes on while a node that does not hold that slot is down.
 * Without the tag, Redis refuses BullMQ's multi-key scripts (CROSSSLOT), which is why the
 * settings refuse a cluster with an untagged prefix.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { settingsSchema } from '../../src/config/schema.js';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { QUEUE_RECONCILE } from '../../src/queue/jobs.js';
import { createRedis } from '../../src/queue/redis-connection.js';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';
import { leaveVoicemail, listFolder } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import type { SeenEmail } from '../support/mail-client.js';
import { startRedisCluster, type RedisCluster, type RedisServer } from '../support/redis.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const PREFIX = '{vmbt}';
const WAIT = { timeoutMs: 20_000, intervalMs: 100 };
const ref: MailboxRef = { context: 'default', mailbox: '8100' };

describe('Redis Cluster with a hash-tagged prefix', { timeout: 90_000 }, () => {
  let cluster: RedisCluster;
  let h: Harness;
  /** Plain connections to each node, to see where the keys are. */
  const direct = new Map<number, Redis>();
  const on = (n: RedisServer): Redis => direct.get(n.port)!;

  const emailOf = (msgId: string): Promise<SeenEmail> =>
    waitFor(`the email of ${msgId}`, async () => (await h.emails(ref)).find((e) => e.messageId === identityMessageId(ref, msgId, DOMAIN)), WAIT);
  const inSpool = (msgId: string, folder: SpoolFolder): Promise<true> =>
    waitFor(`${msgId} in ${folder}`, async () => (await listFolder(h.spoolDir, ref, folder)).some((m) => m.msgId === msgId) || undefined, WAIT);

  before(async () => {
    // A stopped node counts as failed after 2 s, and without full coverage the other nodes go on
    // serving their slots (there is no replica to take over the stopped node's).
    cluster = await startRedisCluster({ nodeTimeoutMs: 2_000, requireFullCoverage: false });
    for (const n of cluster.nodes) {
      const r = new Redis(n.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      r.on('error', () => undefined);
      direct.set(n.port, r);
    }
    h = await startHarness({
      boxes: [{ mailbox: ref.mailbox }],
      settings: (base) => ({ ...base, redis: { url: cluster.url, prefix: PREFIX, cluster: true } }),
    });
    await h.startService();
  });
  after(async () => {
    await h?.stop();
    for (const r of direct.values()) r.disconnect();
    await cluster?.stop();
  });

  let first: string;
  it('a voicemail becomes its email', async () => {
    first = (await leaveVoicemail(h.spoolDir, ref, { callerid: '"Caller" <5550100>', duration: 2 })).msgId;
    await emailOf(first);
  });

  it("a mail client's read reaches the spool (IDLE)", async () => {
    const { uid } = await emailOf(first);
    const mc = await h.mail(ref);
    const lock = await mc.client.getMailboxLock('INBOX');
    try {
      await mc.client.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true });
    } finally {
      lock.release();
    }
    await inSpool(first, 'Old');
  });

  it('every key of the installation, BullMQ\'s too, is in the slot of {vmbt}, on one node', async () => {
    const any = on(cluster.nodes[0]!);
    const slot = Number(await any.call('CLUSTER', 'KEYSLOT', PREFIX));
    const owner = await cluster.ownerOf(slot);
    const keys = await on(owner).keys('*');
    assert.ok(keys.some((k) => k.startsWith(`${PREFIX}:${QUEUE_RECONCILE}:`)), `BullMQ's reconcile queue is there: ${keys.join(' ')}`);
    assert.ok(keys.some((k) => k.startsWith(`${PREFIX}:state:`)), `the sync state is there: ${keys.join(' ')}`);
    for (const k of keys) assert.ok(k.startsWith(`${PREFIX}:`), `${k} has the prefix`);
    assert.equal(Number(await on(owner).call('CLUSTER', 'COUNTKEYSINSLOT', String(slot))), keys.length, 'all of them in that one slot');
    for (const n of cluster.nodes.filter((x) => x !== owner)) assert.equal(await on(n).dbsize(), 0, `node ${n.port} holds none`);
  });

  it('without a hash tag Redis refuses BullMQ\'s scripts (CROSSSLOT), and the settings refuse it first', async () => {
    const untagged = { ...h.settings.redis, prefix: 'vmbt' };
    assert.equal(settingsSchema.safeParse({ imap: { host: '127.0.0.1' }, redis: { url: cluster.url, prefix: 'vmbt', cluster: true } }).success, false);
    const connection = createRedis(untagged, 'untagged', { maxRetriesPerRequest: 1 });
    connection.on('error', () => undefined);
    const queue = new Queue(QUEUE_RECONCILE, { connection, prefix: untagged.prefix });
    queue.on('error', () => undefined);
    try {
      await assert.rejects(queue.add('probe', {}), /CROSSSLOT/);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });

  it('with a node that does not hold the slot stopped, a second voicemail still becomes its email', async () => {
    const slot = Number(await on(cluster.nodes[0]!).call('CLUSTER', 'KEYSLOT', PREFIX));
    const owner = await cluster.ownerOf(slot);
    const other = cluster.nodes.find((n) => n !== owner)!;
    direct.get(other.port)!.disconnect();
    await other.stop();
    await waitFor('the owner to see the stopped node as failed', async () => /\bfail\b/.test(String(await on(owner).call('CLUSTER', 'NODES'))) || undefined, WAIT);
    const second = (await leaveVoicemail(h.spoolDir, ref, { callerid: '"Second" <5550101>', duration: 2 })).msgId;
    await emailOf(second);
  });
});

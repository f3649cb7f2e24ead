/**
 * The private test servers themselves: a real Dovecot (users, master user, quota, a variant
 * without UIDPLUS) and a real Redis, started and stopped by the helpers every other integration
 * test relies on.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { ImapFlow } from 'imapflow';
import { Redis } from 'ioredis';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { isAlive } from '../support/processes.js';
import { startRedis, type RedisServer } from '../support/redis.js';

async function open(server: DovecotServer, user: string, pass: string): Promise<ImapFlow> {
  // ssl = no on loopback: no STARTTLS offered, and doSTARTTLS: false says not to want it.
  const client = new ImapFlow({
    host: server.host,
    port: server.port,
    secure: false,
    doSTARTTLS: false,
    auth: { user, pass },
    logger: false,
    disableAutoIdle: true,
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Post-login capabilities, without the AUTH= entries some clients keep from the greeting. */
const caps = (client: ImapFlow): Set<string> => new Set([...client.capabilities.keys()].filter((c) => !c.startsWith('AUTH=')));

describe('private Dovecot and Redis', () => {
  let dovecot: DovecotServer;
  let noUidplus: DovecotServer;
  let redis: RedisServer;

  before(async () => {
    [dovecot, noUidplus, redis] = await Promise.all([
      startDovecot({
        users: [{ user: 'alice', pass: 'alicepw' }, { user: 'carol', pass: 'carolpw', quotaRule: '*:messages=1' }],
        masterUser: { user: 'master', pass: 'masterpw' },
      }),
      startDovecot({ users: [{ user: 'alice', pass: 'alicepw' }], omitCapabilities: ['UIDPLUS'] }),
      startRedis(),
    ]);
  });

  after(async () => {
    await Promise.all([dovecot?.stop(), noUidplus?.stop(), redis?.stop()]);
  });

  it('a user logs in and gets UIDPLUS, MOVE, CONDSTORE, QUOTA and the special-use folders', async () => {
    const client = await open(dovecot, 'alice', 'alicepw');
    try {
      const have = caps(client);
      for (const cap of ['UIDPLUS', 'MOVE', 'CONDSTORE', 'QRESYNC', 'QUOTA', 'IDLE', 'SPECIAL-USE']) assert.ok(have.has(cap), `missing ${cap}`);
      const folders = await client.list();
      assert.equal(folders.find((f) => f.specialUse === '\\Trash')?.path, 'Trash');
      assert.ok(folders.some((f) => f.path === 'INBOX'));
    } finally {
      await client.logout();
    }
  });

  it('user*master acts as that user', async () => {
    const asMaster = await open(dovecot, 'alice*master', 'masterpw');
    try {
      assert.ok(caps(asMaster).has('UIDPLUS'));
      const appended = await asMaster.append('INBOX', 'Subject: via master\r\n\r\nhello\r\n');
      assert.ok(appended && appended.uid, 'APPENDUID came back');
    } finally {
      await asMaster.logout();
    }
    const asAlice = await open(dovecot, 'alice', 'alicepw');
    try {
      const status = await asAlice.status('INBOX', { messages: true });
      assert.ok(status, 'STATUS answered');
      assert.equal(status.messages, 1);
    } finally {
      await asAlice.logout();
    }
    await assert.rejects(open(dovecot, 'nobody-here*master', 'masterpw'));
    await assert.rejects(open(dovecot, 'alice*master', 'wrong'));
  });

  it('a per-user quota rule is enforced', async () => {
    const client = await open(dovecot, 'carol', 'carolpw');
    try {
      const quota = await client.getQuota('INBOX');
      assert.ok(quota && quota.message, 'QUOTA reports a message limit');
      assert.equal(quota.message.limit, 1);
      // A per-user rule replaces the whole default rule: no storage limit is left.
      assert.equal(quota.storage, undefined);
      await client.append('INBOX', 'Subject: one\r\n\r\n1\r\n');
      await assert.rejects(client.append('INBOX', 'Subject: two\r\n\r\n2\r\n'));
    } finally {
      await client.logout();
    }
  });

  it('addUser makes a new user able to log in while the server runs', async () => {
    await dovecot.addUser('dave', 'davepw');
    const client = await open(dovecot, 'dave', 'davepw');
    await client.logout();
  });

  it('the variant without UIDPLUS advertises everything else, UIDPLUS not', async () => {
    const plain = await open(dovecot, 'alice', 'alicepw');
    const variant = await open(noUidplus, 'alice', 'alicepw');
    try {
      const full = caps(plain);
      const reduced = caps(variant);
      assert.equal(reduced.has('UIDPLUS'), false);
      for (const cap of ['MOVE', 'CONDSTORE', 'QUOTA']) assert.ok(reduced.has(cap), `missing ${cap}`);
      // The hard-coded list must match what this Dovecot really offers, minus UIDPLUS.
      assert.deepEqual([...reduced].sort(), [...full].filter((c) => c !== 'UIDPLUS').sort());
    } finally {
      await plain.logout();
      await variant.logout();
    }
  });

  it('Redis answers PING through ioredis', async () => {
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      assert.equal(await client.ping(), 'PONG');
      assert.equal(await client.config('GET', 'save').then((r) => (r as string[])[1]), '');
    } finally {
      client.disconnect();
    }
  });

  it('stop() ends exactly the started processes and removes their folders', async () => {
    const servers = [dovecot, noUidplus, redis];
    for (const s of servers) assert.ok(isAlive(s.pid));
    await Promise.all(servers.map((s) => s.stop()));
    for (const s of servers) {
      assert.equal(isAlive(s.pid), false, `pid ${s.pid} still running`);
      assert.equal(existsSync(s.dir), false, `${s.dir} left behind`);
    }
    await dovecot.stop(); // a second stop is harmless
  });
});

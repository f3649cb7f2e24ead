/**
 * The connection bounds: per user (IDLE never takes the last slot), per server, waiting in line
 * instead of failing, and the settings that set them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/load-settings.js';
import { ConfigError } from '../../src/errors.js';
import { ConnectionLimiter, type ConnectionSlot } from '../../src/imap/connection-limiter.js';

/** Whether a promise has settled after the current microtasks ran. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => (done = true), () => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('ConnectionLimiter', () => {
  it('per user: a request beyond the bound waits, and gets the slot a closing connection gives back', async () => {
    const l = new ConnectionLimiter({ perServer: 10, perServerIdle: 10, perUser: 2 });
    const a1 = l.tryAcquire('alice', 'command')!;
    const a2 = l.tryAcquire('alice', 'command')!;
    assert.ok(a1 && a2);
    assert.equal(l.tryAcquire('alice', 'command'), undefined);
    const third = l.acquire('alice', 'command');
    assert.equal(await settled(third), false, 'waits');
    // Another user is not held up by alice's line.
    assert.ok(l.tryAcquire('bob', 'command'));
    a1.release();
    a1.release(); // idempotent: frees one slot, not two
    const slot = await third;
    assert.equal(slot.user, 'alice');
    assert.deepEqual(l.open('alice'), { command: 2, idle: 0 });
    assert.equal(l.tryAcquire('alice', 'command'), undefined);
    assert.equal(l.peaks.perUser, 2);
  });

  it('IDLE never takes a user\'s last slot, so a command connection always can be had', async () => {
    const l = new ConnectionLimiter({ perServer: 10, perServerIdle: 10, perUser: 2 });
    const idle = l.tryAcquire('alice', 'idle');
    assert.ok(idle);
    assert.equal(l.tryAcquire('alice', 'idle'), undefined, 'a second IDLE would leave no room for commands');
    const cmd = l.tryAcquire('alice', 'command');
    assert.ok(cmd, 'the command connection fits next to IDLE');
    // A reconnecting IDLE waits for the old one to close.
    const again = l.acquire('alice', 'idle');
    assert.equal(await settled(again), false);
    idle.release();
    assert.equal((await again).kind, 'idle');
    // With one slot per user there is never room for IDLE.
    const one = new ConnectionLimiter({ perServer: 10, perServerIdle: 10, perUser: 1 });
    assert.equal(one.tryAcquire('alice', 'idle'), undefined);
    assert.ok(one.tryAcquire('alice', 'command'));
  });

  it('per server: command connections wait in the order they came; IDLE connections have their own bound', async () => {
    const l = new ConnectionLimiter({ perServer: 2, perServerIdle: 1, perUser: 3 });
    const a = l.tryAcquire('a', 'command')!;
    l.tryAcquire('b', 'command');
    assert.equal(l.commandsBlockedByServer(), 0, 'no one waits yet');
    const order: string[] = [];
    const c = l.acquire('c', 'command').then((s) => (order.push('c'), s));
    const d = l.acquire('d', 'command').then((s) => (order.push('d'), s));
    assert.equal(l.waiting('command'), 2);
    assert.equal(l.commandsBlockedByServer(), 2);
    // IDLE slots are counted apart from the command slots.
    assert.ok(l.tryAcquire('a', 'idle'));
    assert.equal(l.tryAcquire('b', 'idle'), undefined, 'one IDLE connection at most');
    a.release();
    const cSlot = await c;
    assert.deepEqual(order, ['c']);
    assert.equal(await settled(d), false);
    cSlot.release();
    await d;
    assert.deepEqual(order, ['c', 'd']);
    assert.equal(l.peaks.command, 2);
  });

  it('a wait can be given up (abort), and close() rejects every waiter', async () => {
    const l = new ConnectionLimiter({ perServer: 1, perServerIdle: 1, perUser: 2 });
    const held: ConnectionSlot = l.tryAcquire('a', 'command')!;
    const ac = new AbortController();
    const gaveUp = l.acquire('b', 'command', ac.signal);
    const next = l.acquire('c', 'command');
    ac.abort();
    await assert.rejects(gaveUp);
    held.release();
    assert.equal((await next).user, 'c', 'the slot went to the one still waiting');
    const late = l.acquire('d', 'command');
    l.close(new Error('closed'));
    await assert.rejects(late, /closed/);
    await assert.rejects(l.acquire('e', 'command'), /closed/);
  });
});

describe('settings: imap.maxConnections and imap.maxConnectionsPerUser', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-limits-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const load = (env: Record<string, string>) => loadSettings({ env: { VMBRIDGE_IMAP_HOST: 'mail.example.com', ...env }, defaultFile: join(dir, 'absent.yaml') });

  it('defaults: 50 per server, 2 per user (one command and one IDLE connection)', async () => {
    const { settings } = await load({});
    assert.equal(settings.imap.maxConnections, 50);
    assert.equal(settings.imap.maxConnectionsPerUser, 2);
  });

  it('1 per user is refused while IDLE is on, with the key named; accepted with IDLE off', async () => {
    await assert.rejects(load({ VMBRIDGE_IMAP_MAX_CONNECTIONS_PER_USER: '1' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /imap\.maxConnectionsPerUser: must be at least 2 while IDLE is on .*imap\.idle\.maxAccounts: 0/);
      return true;
    });
    const { settings } = await load({ VMBRIDGE_IMAP_MAX_CONNECTIONS_PER_USER: '1', VMBRIDGE_IMAP_IDLE__MAX_ACCOUNTS: '0' });
    assert.equal(settings.imap.maxConnectionsPerUser, 1);
  });

  it('0 or a fraction is refused with the key named', async () => {
    for (const bad of ['0', '2.5']) {
      await assert.rejects(load({ VMBRIDGE_IMAP_MAX_CONNECTIONS_PER_USER: bad }), (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, /imap\.maxConnectionsPerUser/);
        return true;
      });
    }
  });
});

/**
 * Connection bounds against a Dovecot that allows only 2 sessions per user and address
 * (mail_max_userip_connections = 2), so one connection too many is a refused login: many
 * concurrent operations on few users, with IDLE watching every one of them, more users than
 * imap.maxConnections (connections are closed and reopened all the time), and every connection cut
 * at once. Sessions are counted per user at a relay in front of Dovecot; Dovecot's log must not
 * show one refusal, and every operation must complete.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { Settings } from '../../src/config/schema.js';
import { settingsSchema } from '../../src/config/schema.js';
import { ImapAuthBackoffError, ImapError } from '../../src/errors.js';
import { IdleWatcher } from '../../src/imap/idle-watcher.js';
import { ImapPool } from '../../src/imap/pool.js';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { startImapTap, type ImapTap } from '../support/imap-tap.js';
import { MailClient } from '../support/mail-client.js';
import { maxConcurrent, sessions } from '../support/tap-sessions.js';
import { memoryLogger } from '../support/memory-log.js';

const SERVER_LIMIT = 2;
const USERS = ['u1', 'u2', 'u3'];
const pass = (user: string): string => `pw-${user}-7`;


/** Deterministic pauses, so a failure can be run again the same way. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    return s / 2_147_483_648;
  };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('IMAP connection bounds against a Dovecot with mail_max_userip_connections = 2', { timeout: 120_000 }, () => {
  let dovecot: DovecotServer;
  let tap: ImapTap;

  before(async () => {
    dovecot = await startDovecot({ users: [...USERS, 'u9'].map((user) => ({ user, pass: pass(user) })), maxUserIpConnections: SERVER_LIMIT });
    tap = await startImapTap();
    tap.upstreamPort = dovecot.port;
  });
  after(async () => {
    await tap?.close();
    await dovecot?.stop();
  });

  const limitRefusals = async (): Promise<number> => (await readFile(dovecot.logPath, 'utf8')).split('\n').filter((l) => l.includes('Maximum number of connections from user+IP exceeded')).length;

  it('the server\'s limit is real, and a [LIMIT] refusal is a clear error, not a wrong password (no back-off)', async () => {
    // Another client of u9 on this host (a webmail, say) holds both sessions the server allows.
    const others = [await MailClient.open(dovecot.port, 'u9', pass('u9')), await MailClient.open(dovecot.port, 'u9', pass('u9'))];
    const { log, lines } = memoryLogger();
    const pool = new ImapPool(settingsSchema.shape.imap.parse({ host: '127.0.0.1', port: tap.port, secure: false, requireTls: false }), log);
    try {
      const before = await limitRefusals();
      await assert.rejects(pool.withClient({ user: 'u9', password: pass('u9') }, async () => undefined), (err: unknown) => {
        assert.ok(err instanceof ImapError && !(err instanceof ImapAuthBackoffError), String(err));
        assert.equal(err.account, 'u9');
        assert.match(err.message, /^u9: cannot log in .*: the server allows no more connections for this user from this address \(\[LIMIT\] Maximum number of connections .*imap\.maxConnectionsPerUser/);
        return true;
      });
      assert.equal(await limitRefusals(), before + 1, 'Dovecot refused the third session');
      assert.equal(lines.filter((l) => l.includes('imap login refused')).length, 0, 'not taken for a refused password');
      // As soon as the other client lets go, the account works: no back-off was started.
      await others.pop()!.close();
      let ok = false;
      for (let i = 0; i < 50 && !ok; i++) {
        ok = await pool.withClient({ user: 'u9', password: pass('u9') }, async (c) => Boolean(c.authenticated)).catch((err: unknown) => {
          // The server may take a moment to count the closed session out; never a back-off.
          assert.ok(!(err instanceof ImapAuthBackoffError), String(err));
          return false;
        });
        if (!ok) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(ok, 'logged in once the other session was gone');
    } finally {
      await pool.close();
      for (const o of others) await o.close();
    }
  });

  it('many concurrent operations per user, IDLE on every user, more users than connections, every connection cut: never more than the bounds, no refusal, every operation completes', async (t) => {
    const server: Settings['imap'] = settingsSchema.shape.imap.parse({
      host: '127.0.0.1',
      port: tap.port,
      secure: false,
      requireTls: false,
      // Per server: 2 command connections for 3 busy users, so connections are closed and reopened.
      maxConnections: 2,
      // Per user: the server's limit, taken by one IDLE and one command connection.
      maxConnectionsPerUser: SERVER_LIMIT,
      idle: { maxAccounts: USERS.length },
    });
    const { log } = memoryLogger();
    const pool = new ImapPool(server, log);
    const idle = new IdleWatcher({ server, maxAccounts: USERS.length, log, onChange: () => undefined, initialDelayMs: 20, maxDelayMs: 100, limiter: pool.limiter });
    const firstConnection = tap.connections.length;
    const refusalsBefore = await limitRefusals();
    const ours = () => sessions(tap).filter((s) => s.connection.id > firstConnection);
    const idleOpen = (): number => ours().filter((s) => s.idle && s.closedAt === undefined).length;
    let done = 0;
    let started = 0;
    /** One worker: operations one after another, with short pauses, as reconciles come and go. */
    const worker = async (user: string, seed: number, ops: number): Promise<void> => {
      const rnd = random(seed);
      for (let i = 0; i < ops; i++) {
        started++;
        await pool.withClient({ user, password: pass(user) }, async (c) => {
          if (rnd() < 0.3) await c.append('INBOX', `Subject: ${user} ${seed} ${i}\r\n\r\nx\r\n`);
          const lock = await c.getMailboxLock('INBOX');
          try {
            await c.search({ all: true }, { uid: true });
          } finally {
            lock.release();
          }
        });
        done++;
        await new Promise((r) => setTimeout(r, Math.floor(rnd() * 15)));
      }
    };
    const burst = (round: number): Promise<void[]> => Promise.all(USERS.flatMap((user, u) => Array.from({ length: 4 }, (_, w) => worker(user, round * 100 + u * 10 + w + 1, 6))));
    try {
      idle.update(USERS.map((user) => ({ user, password: pass(user) })));
      await waitFor('IDLE on every user', () => idleOpen() === USERS.length);
      const t0 = Date.now();
      await burst(1);
      // Every connection cut at once (none is in use: an operation in flight would fail, and its
      // reconcile be retried). IDLE and the next operations reconnect together.
      tap.dropAll();
      await waitFor('the cut to be seen', () => pool.limiter.open().command === 0);
      await burst(2);
      await waitFor('IDLE back on every user', () => idleOpen() === USERS.length);
      const elapsed = Date.now() - t0;

      assert.equal(done, started, 'every operation completed');
      assert.equal(done, 2 * USERS.length * 4 * 6);
      const all = ours();
      const perUser = USERS.map((user) => maxConcurrent(all.filter((s) => s.user === user)));
      const command = all.filter((s) => !s.idle);
      const commandPeak = maxConcurrent(command);
      t.diagnostic(`${done} operations in ${elapsed} ms over ${all.length} sessions (${command.length} command, ${all.length - command.length} IDLE); most sessions at once per user ${perUser.join('/')} (bound ${SERVER_LIMIT}); command sessions at once ${commandPeak} (bound ${server.maxConnections}); limiter peaks ${JSON.stringify(pool.limiter.peaks)}`);
      for (const [i, peak] of perUser.entries()) assert.ok(peak <= SERVER_LIMIT, `${USERS[i]} had ${peak} sessions at once`);
      assert.ok(commandPeak <= server.maxConnections, `${commandPeak} command sessions at once`);
      assert.ok(pool.limiter.peaks.perUser <= SERVER_LIMIT && pool.limiter.peaks.command <= server.maxConnections, JSON.stringify(pool.limiter.peaks));
      // The bounds were actually pressed: connections were replaced, IDLE ran beside commands.
      assert.ok(command.length > USERS.length * 2, `only ${command.length} command sessions: no churn`);
      assert.ok(perUser.every((p) => p === SERVER_LIMIT), 'every user reached its bound');
      assert.equal(await limitRefusals(), refusalsBefore, 'Dovecot refused no login for too many connections');
      assert.ok(all.every((s) => s.mechanism === 'PLAIN'));
    } finally {
      await idle.close();
      await pool.close();
    }
  });
});

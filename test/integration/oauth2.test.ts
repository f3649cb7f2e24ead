/**
 * OAuth2 logins (imap.login.mode: oauth2) against a Dovecot that checks every bearer token at an
 * RFC 7662 introspection endpoint (its oauth2 passdb), with a relay in front that shows every
 * AUTHENTICATE sent: a valid token works (OAUTHBEARER, and XOAUTH2 where that is all the server
 * offers); a rotated token file is used at the next connect; an expired token is a clear error
 * with a back-off and no retry storm (and a rotated token ends the back-off at once); a token
 * revoked while connected fails at the reconnect; an authorization server that is down is no
 * "wrong token"; and no token ever reaches a log line, vmbridge's or Dovecot's.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImapFlow } from 'imapflow';
import type { Settings } from '../../src/config/schema.js';
import { settingsSchema } from '../../src/config/schema.js';
import { ImapAuthBackoffError, ImapError } from '../../src/errors.js';
import { ImapPool } from '../../src/imap/pool.js';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { startImapTap, type ImapTap } from '../support/imap-tap.js';
import { startIntrospectionServer, type IntrospectionServer } from '../support/oauth-introspection.js';
import { sessions, type TapSession } from '../support/tap-sessions.js';
import { memoryLogger } from '../support/memory-log.js';


/** A token as an authorization server issues them: opaque, random, URL-safe. */
function newToken(): string {
  return `at-${randomBytes(24).toString('base64url')}`;
}

const MESSAGE = 'From: a@example.com\r\nTo: b@example.com\r\nSubject: oauth2 test\r\nMessage-ID: <oauth2-test@vmbridge.invalid>\r\n\r\nhello\r\n';

describe('OAuth2 logins against Dovecot with token introspection', { timeout: 120_000 }, () => {
  let intro: IntrospectionServer;
  let dovecot: DovecotServer;
  let tap: ImapTap;
  let dir: string;
  const tokens = new Set<string>();
  const allLines: string[] = [];

  /** Issues a token for `user` at the authorization server and writes it to the user's token file. */
  async function issue(user: string, opts: { ttlMs?: number } = {}): Promise<string> {
    const token = newToken();
    tokens.add(token);
    intro.addToken(token, user, opts);
    await writeFile(join(dir, `${user}.token`), `${token}\n`, { mode: 0o600 });
    return token;
  }

  function settings(port: number): Settings['imap'] {
    return settingsSchema.shape.imap.parse({ host: '127.0.0.1', port, secure: false, requireTls: false, login: { mode: 'oauth2', tokenFile: join(dir, '{user}.token') } });
  }

  const authsOf = (user: string): TapSession[] => sessions(tap).filter((s) => s.user === user);
  const lookupsOf = (user: string) => intro.lookups.filter((l) => l.user === user);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-oauth2-'));
    intro = await startIntrospectionServer();
    // OAuth2 users exist in the userdb (their mail lives somewhere) with passwords nobody knows.
    const users = ['carol', 'dave', 'erin', 'frank', 'gina'].map((user) => ({ user, pass: `unused-${randomBytes(12).toString('hex')}` }));
    dovecot = await startDovecot({ users: [{ user: 'alice', pass: 'Alice-Pw-1' }, ...users], oauth2: { introspectionUrl: intro.urlFor('post'), mode: 'post' } });
    tap = await startImapTap();
    tap.upstreamPort = dovecot.port;
  });
  after(async () => {
    await tap?.close();
    await dovecot?.stop();
    await intro?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a valid token logs in with OAUTHBEARER, checked by the introspection endpoint, and commands work', async () => {
    const token = await issue('carol', { ttlMs: 3_600_000 });
    const { log } = memoryLogger(allLines);
    const pool = new ImapPool(settings(tap.port), log);
    try {
      const messages = await pool.withClient({ user: 'carol' }, async (client) => {
        await client.append('INBOX', MESSAGE);
        return messagesIn(client);
      });
      assert.equal(messages, 1);
    } finally {
      await pool.close();
    }
    const [session, ...more] = authsOf('carol');
    assert.equal(more.length, 0, 'one login');
    assert.equal(session?.mechanism, 'OAUTHBEARER', 'imapflow prefers OAUTHBEARER when both are offered');
    assert.equal(session?.secret, token, 'the token of the file');
    assert.deepEqual(lookupsOf('carol').map((l) => [l.method, l.reason]), [['POST', 'ok']], 'Dovecot asked the endpoint once');
    assert.equal(intro.refused, 0, 'Dovecot authenticated as the introspection client');
    // Passwords still work beside tokens, and do not reach the introspection endpoint.
    const before = intro.requests;
    const pwPool = new ImapPool(settingsSchema.shape.imap.parse({ host: '127.0.0.1', port: dovecot.port, secure: false, requireTls: false }), log);
    try {
      assert.equal(await pwPool.withClient({ user: 'alice', password: 'Alice-Pw-1' }, async (c) => Boolean(c.authenticated)), true);
    } finally {
      await pwPool.close();
    }
    assert.equal(intro.requests, before);
  });

  it('a rotated token file: the next connect uses the new token', async () => {
    const first = await issue('dave', { ttlMs: 3_600_000 });
    const { log } = memoryLogger(allLines);
    const pool = new ImapPool(settings(tap.port), log);
    try {
      await pool.withClient({ user: 'dave' }, async (c) => c.noop());
      // The token refresher writes a new token and the old one runs out.
      const second = await issue('dave', { ttlMs: 3_600_000 });
      intro.expire(first);
      // The open connection is not logged in again: the new token waits for the next connect.
      await pool.withClient({ user: 'dave' }, async (c) => c.noop());
      assert.deepEqual(authsOf('dave').map((s) => s.secret), [first]);
      tap.dropAll();
      await waitFor(() => tap.connections.every((c) => c.closedAt !== undefined));
      const n = await pool.withClient({ user: 'dave' }, async (c) => messagesIn(c));
      assert.equal(n, 0);
      assert.deepEqual(authsOf('dave').map((s) => s.secret), [first, second], 'the reconnect sent the rotated token');
      assert.deepEqual(lookupsOf('dave').map((l) => l.reason), ['ok', 'ok']);
    } finally {
      await pool.close();
    }
  });

  it('an expired token: a typed error naming the account, then back-off with no new AUTHENTICATE; a rotated token is tried at once', async (t) => {
    const expired = await issue('erin', { ttlMs: 3_600_000 });
    intro.expire(expired);
    const { log, lines } = memoryLogger(allLines);
    const pool = new ImapPool(settings(tap.port), log);
    try {
      // A burst, as when many mailboxes of the account are reconciled at once: one login.
      const burst = await Promise.allSettled(Array.from({ length: 10 }, () => pool.withClient({ user: 'erin' }, async () => undefined)));
      for (const r of burst) {
        assert.equal(r.status, 'rejected');
        const err: unknown = r.reason;
        assert.ok(err instanceof ImapError && !(err instanceof ImapAuthBackoffError), String(err));
        assert.equal(err.account, 'erin');
        if (r === burst[0]) t.diagnostic(err.message);
        assert.match(err.message, /^erin: cannot log in to 127\.0\.0\.1:\d+: authentication failed \(\[AUTHENTICATIONFAILED\] .*OAuth2 status invalid_token\); the OAuth2 token was refused \(expired, revoked, or not issued for erin\)/);
      }
      assert.equal(authsOf('erin').length, 1, 'one AUTHENTICATE for the whole burst');
      // Then every try during the back-off fails at once, without the server.
      const started = Date.now();
      let tries = 0;
      while (Date.now() - started < 1_500) {
        tries++;
        await assert.rejects(pool.withClient({ user: 'erin' }, async () => undefined), (err: unknown) => {
          assert.ok(err instanceof ImapAuthBackoffError, String(err));
          assert.equal(err.account, 'erin');
          assert.ok(err.retryAt.getTime() - Date.now() > 55_000, 'the first wait is 60 s');
          assert.match(err.message, /^erin: authentication failed \(.*OAuth2 token was refused.*\); not tried again before \d{4}-/);
          return true;
        });
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(tries > 50, `tried ${tries} times`);
      assert.equal(authsOf('erin').length, 1, `no AUTHENTICATE during the back-off (${tries} tries)`);
      assert.equal(lookupsOf('erin').length, 1, 'one introspection request');
      assert.equal(lines.filter((l) => l.includes('imap login refused')).length, 1, 'logged once');
      t.diagnostic(`expired token: ${burst.length + tries} withClient calls in ${Date.now() - started} ms, ${authsOf('erin').length} AUTHENTICATE, ${lookupsOf('erin').length} introspection request`);
      // The refresher writes a new token: tried at once, back-off or not.
      const fresh = await issue('erin', { ttlMs: 3_600_000 });
      assert.equal(await pool.withClient({ user: 'erin' }, async (c) => Boolean(c.authenticated)), true);
      assert.deepEqual(authsOf('erin').map((s) => s.secret), [expired, fresh]);
      assert.deepEqual(lookupsOf('erin').map((l) => l.reason), ['expired', 'ok']);
    } finally {
      await pool.close();
    }
  });

  it('a token revoked while connected: the session goes on, the reconnect fails clearly and backs off', async () => {
    const token = await issue('frank', { ttlMs: 3_600_000 });
    const { log } = memoryLogger(allLines);
    const pool = new ImapPool(settings(tap.port), log);
    try {
      await pool.withClient({ user: 'frank' }, async (c) => c.append('INBOX', MESSAGE));
      intro.revoke(token);
      // IMAP checks a token at login only: the open session still works.
      assert.equal(await pool.withClient({ user: 'frank' }, async (c) => messagesIn(c)), 1);
      tap.dropAll();
      await waitFor(() => tap.connections.every((c) => c.closedAt !== undefined));
      await assert.rejects(pool.withClient({ user: 'frank' }, async () => undefined), (err: unknown) => {
        assert.ok(err instanceof ImapError && !(err instanceof ImapAuthBackoffError), String(err));
        assert.equal(err.account, 'frank');
        assert.match(err.message, /^frank: cannot log in .*authentication failed .*the OAuth2 token was refused/);
        return true;
      });
      await assert.rejects(pool.withClient({ user: 'frank' }, async () => undefined), ImapAuthBackoffError);
      assert.equal(authsOf('frank').length, 2, 'the first login and the refused one, nothing more');
      assert.deepEqual(lookupsOf('frank').map((l) => l.reason), ['ok', 'revoked']);
    } finally {
      await pool.close();
    }
  });

  it('the authorization server down: a temporary failure, no back-off (unlike a refused token)', async () => {
    await issue('gina', { ttlMs: 3_600_000 });
    const { log, lines } = memoryLogger(allLines);
    const pool = new ImapPool(settings(tap.port), log);
    intro.unavailable = true;
    try {
      for (let i = 0; i < 2; i++) {
        await assert.rejects(pool.withClient({ user: 'gina' }, async () => undefined), (err: unknown) => {
          assert.ok(err instanceof ImapError && !(err instanceof ImapAuthBackoffError), String(err));
          assert.match(err.message, /^gina: cannot log in .*login not possible right now, for a reason other than the credentials \(\[UNAVAILABLE\]/);
          assert.doesNotMatch(err.message, /token was refused/);
          return true;
        });
      }
      assert.equal(authsOf('gina').length, 2, 'each try reached the server');
      assert.equal(lines.filter((l) => l.includes('imap login refused')).length, 0);
      intro.unavailable = false;
      assert.equal(await pool.withClient({ user: 'gina' }, async (c) => Boolean(c.authenticated)), true);
    } finally {
      intro.unavailable = false;
      await pool.close();
    }
  });

  it('no token in any log line, vmbridge\'s or Dovecot\'s', async () => {
    assert.ok(tokens.size >= 6 && allLines.length > 0);
    const dovecotLog = await readFile(dovecot.logPath, 'utf8');
    for (const token of tokens) {
      const secret = token.slice(3); // the random part
      assert.equal(allLines.some((l) => l.includes(secret)), false, 'a token in vmbridge\'s log');
      assert.equal(dovecotLog.includes(secret), false, 'a token in Dovecot\'s log');
    }
  });
});

describe('OAuth2 with a server that offers only XOAUTH2', { timeout: 60_000 }, () => {
  it('logs in with XOAUTH2; an expired token is refused with the same clear error', async () => {
    const intro = await startIntrospectionServer();
    const dir = await mkdtemp(join(tmpdir(), 'vmb-xoauth2-'));
    const dovecot = await startDovecot({ users: [{ user: 'hank', pass: `unused-${randomBytes(12).toString('hex')}` }], oauth2: { introspectionUrl: intro.urlFor('post'), mechanisms: ['xoauth2'] } });
    const tap = await startImapTap();
    tap.upstreamPort = dovecot.port;
    const lines: string[] = [];
    const { log } = memoryLogger(lines);
    const server = settingsSchema.shape.imap.parse({ host: '127.0.0.1', port: tap.port, secure: false, requireTls: false, login: { mode: 'oauth2', tokenFile: join(dir, '{user}.token') } });
    const pool = new ImapPool(server, log);
    try {
      const token = newToken();
      intro.addToken(token, 'hank');
      await writeFile(join(dir, 'hank.token'), token);
      assert.equal(await pool.withClient({ user: 'hank' }, async (c) => Boolean(c.authenticated)), true);
      assert.deepEqual(sessions(tap).map((s) => [s.user, s.mechanism, s.secret === token]), [['hank', 'XOAUTH2', true]]);
      intro.expire(token);
      tap.dropAll();
      await waitFor(() => tap.connections.every((c) => c.closedAt !== undefined));
      await assert.rejects(pool.withClient({ user: 'hank' }, async () => undefined), /^ImapError: hank: cannot log in .*authentication failed .*the OAuth2 token was refused/);
      await assert.rejects(pool.withClient({ user: 'hank' }, async () => undefined), ImapAuthBackoffError);
      assert.equal(sessions(tap).length, 2);
      assert.equal(lines.some((l) => l.includes(token.slice(3))), false);
    } finally {
      await pool.close();
      await tap.close();
      await dovecot.stop();
      await intro.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** Messages in INBOX (STATUS). */
async function messagesIn(client: ImapFlow): Promise<number | undefined> {
  const status = await client.status('INBOX', { messages: true });
  return status === false ? undefined : status.messages;
}

async function waitFor(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

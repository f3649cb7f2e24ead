/**
 * IMAP logins against a private Dovecot: per-user password, master user, a wrong password that
 * backs off instead of retrying (counted at a relay in front of Dovecot) unless the password is
 * corrected (with the IDLE watcher sharing that back-off, one login at a time), and the OAuth2
 * token plumbing (file, command, rotation, errors; the token never reaches a log line). OAuth2
 * against a server that checks tokens: oauth2.test.ts; connection bounds:
 * connection-limits.test.ts; the IDLE watcher under the back-off over time: idle.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Settings } from '../../src/config/schema.js';
import { settingsSchema } from '../../src/config/schema.js';
import { ImapAuthBackoffError, ImapError } from '../../src/errors.js';
import { imapOptions } from '../../src/imap/connect.js';
import { IdleWatcher } from '../../src/imap/idle-watcher.js';
import { readAccessToken, runTokenCommand } from '../../src/imap/oauth-token.js';
import { ImapPool } from '../../src/imap/pool.js';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { startImapTap, type ImapTap } from '../support/imap-tap.js';
import { memoryLogger } from '../support/memory-log.js';


function imapSettings(port: number, login: Record<string, unknown> = {}): Settings['imap'] {
  return settingsSchema.shape.imap.parse({ host: '127.0.0.1', port, secure: false, requireTls: false, login });
}

/** LOGIN and AUTHENTICATE commands the relay saw. */
function logins(tap: ImapTap): number {
  return tap.verbs().filter((v) => v === 'LOGIN' || v === 'AUTHENTICATE').length;
}

describe('IMAP logins against Dovecot', { timeout: 300_000 }, () => {
  let dovecot: DovecotServer;
  let tap: ImapTap;

  before(async () => {
    dovecot = await startDovecot({ users: [{ user: 'alice', pass: 'Alice-Pw-1' }, { user: 'bob', pass: 'Bob-Pw-2' }], masterUser: { user: 'vmb', pass: 'Master-Pw-3' } });
    tap = await startImapTap();
    tap.upstreamPort = dovecot.port;
  });
  after(async () => {
    await tap?.close();
    await dovecot?.stop();
  });

  it('per-user password: logs in', async () => {
    const { log } = memoryLogger();
    const pool = new ImapPool(imapSettings(dovecot.port), log);
    try {
      const user = await pool.withClient({ user: 'alice', password: 'Alice-Pw-1' }, async (client) => client.authenticated);
      assert.ok(user, 'authenticated');
    } finally {
      await pool.close();
    }
  });

  it('master user: logs in as the target user', async () => {
    const { log } = memoryLogger();
    const pool = new ImapPool(imapSettings(dovecot.port, { mode: 'master', masterUser: 'vmb', masterPassword: 'Master-Pw-3' }), log);
    try {
      const status = await pool.withClient({ user: 'bob' }, async (client) => client.authenticated);
      assert.ok(status, 'authenticated');
    } finally {
      await pool.close();
    }
  });

  it('a wrong password: a clear error, then back-off with no new login at the server, logged once', async () => {
    const { log, lines } = memoryLogger();
    const pool = new ImapPool(imapSettings(tap.port), log);
    const account = { user: 'bob', password: 'Wrong-Pw-9' };
    try {
      const before = logins(tap);
      await assert.rejects(pool.withClient(account, async () => undefined), (err: unknown) => {
        assert.ok(err instanceof ImapError && !(err instanceof ImapAuthBackoffError), String(err));
        assert.equal(err.account, 'bob');
        assert.match(err.message, /^bob: .*authentication failed/);
        return true;
      });
      assert.equal(logins(tap), before + 1, 'one login attempt');
      for (let i = 0; i < 3; i++) {
        await assert.rejects(pool.withClient(account, async () => undefined), (err: unknown) => {
          assert.ok(err instanceof ImapAuthBackoffError, String(err));
          assert.equal(err.account, 'bob');
          assert.ok(err.retryAt.getTime() > Date.now(), 'retryAt in the future');
          assert.match(err.message, /bob: authentication failed .*not tried again before \d{4}-/);
          return true;
        });
      }
      assert.equal(logins(tap), before + 1, 'no new login during the back-off');
      const warned = lines.filter((l) => l.includes('imap login refused'));
      assert.equal(warned.length, 1, 'logged once per back-off');
      assert.equal(lines.join('\n').includes('Wrong-Pw-9'), false, 'no password in the log');
    } finally {
      await pool.close();
    }
  });

  it('after the back-off the account is tried again, and the wait doubles', async () => {
    const { log, lines } = memoryLogger();
    const pool = new ImapPool(imapSettings(tap.port), log, { initialMs: 200, maxMs: 10_000 });
    const account = { user: 'alice', password: 'Wrong-Pw-9' };
    try {
      const before = logins(tap);
      await assert.rejects(pool.withClient(account, async () => undefined), (err: unknown) => err instanceof ImapError && !(err instanceof ImapAuthBackoffError));
      await new Promise((r) => setTimeout(r, 400));
      await assert.rejects(pool.withClient(account, async () => undefined), (err: unknown) => err instanceof ImapError && !(err instanceof ImapAuthBackoffError));
      assert.equal(logins(tap), before + 2);
      const failures = lines.filter((l) => l.includes('imap login refused')).map((l) => (JSON.parse(l) as { failures: number }).failures);
      assert.deepEqual(failures, [1, 2]);
      // The right password after the wait: the back-off is forgotten.
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await pool.withClient({ user: 'alice', password: 'Alice-Pw-1' }, async (c) => Boolean(c.authenticated)), true);
    } finally {
      await pool.close();
    }
  });
});

describe('the pool and the IDLE watcher log in one at a time per account', { timeout: 60_000 }, () => {
  let dovecot: DovecotServer;
  let tap: ImapTap;
  before(async () => {
    dovecot = await startDovecot({ users: [{ user: 'dana', pass: 'Dana-Pw-5' }] });
    tap = await startImapTap();
    tap.upstreamPort = dovecot.port;
  });
  after(async () => {
    await tap?.close();
    await dovecot?.stop();
  });

  it('a wrong password at start-up, a burst of reconciles and the IDLE connection at once: one login, one log line', async () => {
    const { log, lines } = memoryLogger();
    const server = settingsSchema.shape.imap.parse({ host: '127.0.0.1', port: tap.port, secure: false, requireTls: false, idle: { maxAccounts: 5 } });
    const pool = new ImapPool(server, log);
    const idle = new IdleWatcher({ server, maxAccounts: 5, log, onChange: () => undefined, limiter: pool.limiter, logins: pool.logins });
    const account = { user: 'dana', password: 'Wrong-Pw-9' };
    try {
      // As the service starts: the watcher connects while the start-up reconciles do.
      idle.update([account]);
      const burst = await Promise.allSettled(Array.from({ length: 5 }, () => pool.withClient(account, async () => undefined)));
      for (const r of burst) assert.equal(r.status, 'rejected');
      // The watcher's own retry schedule starts at 0.5-1 s: give it time to show itself.
      await new Promise((r) => setTimeout(r, 2_500));
      assert.equal(logins(tap), 1, 'one login for the pool and the watcher together');
      assert.equal(lines.filter((l) => l.includes('imap login refused;')).length, 1, 'logged once');
      assert.equal(lines.filter((l) => l.includes('IDLE connection failed')).length, 0);
      await assert.rejects(pool.withClient(account, async () => undefined), ImapAuthBackoffError);
      assert.equal(logins(tap), 1);
    } finally {
      await idle.close();
      await pool.close();
    }
  });
});

describe('a corrected password ends the back-off', { timeout: 60_000 }, () => {
  let dovecot: DovecotServer;
  let tap: ImapTap;
  before(async () => {
    dovecot = await startDovecot({ users: [{ user: 'carl', pass: 'Carl-Pw-4' }] });
    tap = await startImapTap();
    tap.upstreamPort = dovecot.port;
  });
  after(async () => {
    await tap?.close();
    await dovecot?.stop();
  });

  it('the same wrong password waits; the right one (voicemail.conf fixed and reloaded) is tried at once', async () => {
    const { log, lines } = memoryLogger();
    const pool = new ImapPool(imapSettings(tap.port), log);
    try {
      await assert.rejects(pool.withClient({ user: 'carl', password: 'Wrong-Pw-9' }, async () => undefined), (err: unknown) => err instanceof ImapError && !(err instanceof ImapAuthBackoffError));
      await assert.rejects(pool.withClient({ user: 'carl', password: 'Wrong-Pw-9' }, async () => undefined), ImapAuthBackoffError);
      assert.equal(logins(tap), 1);
      assert.equal(await pool.withClient({ user: 'carl', password: 'Carl-Pw-4' }, async (c) => Boolean(c.authenticated)), true);
      assert.equal(logins(tap), 2);
      assert.equal(lines.filter((l) => l.includes('password or token has changed')).length, 1);
      assert.equal(lines.join('\n').includes('Carl-Pw-4') || lines.join('\n').includes('Wrong-Pw-9'), false, 'no password in the log');
    } finally {
      await pool.close();
    }
  });
});

describe('OAuth2 token plumbing', { timeout: 60_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-oauth-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('tokenFile: per-user path, one trailing newline dropped, a rotated token read at the next connect', async () => {
    await writeFile(join(dir, 'alice.token'), 'tok-A-1\n', { mode: 0o600 });
    const server = imapSettings(143, { mode: 'oauth2', tokenFile: join(dir, '{user}.token') });
    const first = await imapOptions(server, { user: 'alice' });
    assert.deepEqual(first.auth, { user: 'alice', accessToken: 'tok-A-1' });
    await writeFile(join(dir, 'alice.token'), 'tok-A-2\n');
    assert.deepEqual((await imapOptions(server, { user: 'alice' })).auth, { user: 'alice', accessToken: 'tok-A-2' });
  });

  it('tokenFile: a missing file, an empty token and a user name that would leave the folder are clear errors', async () => {
    const source = { tokenFile: join(dir, '{user}.token') };
    await assert.rejects(readAccessToken(source, 'nobody'), /nobody: cannot read imap\.login\.tokenFile .*nobody\.token \(ENOENT\)/);
    await writeFile(join(dir, 'empty.token'), '\n');
    await assert.rejects(readAccessToken(source, 'empty'), /empty OAuth2 token/);
    await assert.rejects(readAccessToken(source, '../etc'), /cannot be part of a file path/);
  });

  it('tokenCommand: {user} is one argument, no shell; stdout is the token', async () => {
    const script = join(dir, 'token.sh');
    await writeFile(script, '#!/bin/sh\nprintf "tok-for-%s-%s\\n" "$1" "$#"\n');
    await chmod(script, 0o700);
    // A user name with a space and shell characters stays one argument and is never interpreted.
    assert.equal(await readAccessToken({ tokenCommand: [script, '{user}'] }, 'a b;$(x)'), 'tok-for-a b;$(x)-1');
  });

  it('tokenCommand: a non-zero exit and a hang are clear errors that do not show stdout', async () => {
    const failing = join(dir, 'fail.sh');
    await writeFile(failing, '#!/bin/sh\necho "secret-partial-token"\necho "refresh token expired" >&2\nexit 3\n');
    await chmod(failing, 0o700);
    await assert.rejects(readAccessToken({ tokenCommand: [failing] }, 'alice'), (err: unknown) => {
      assert.ok(err instanceof ImapError);
      assert.match(err.message, /alice: imap\.login\.tokenCommand \S+fail\.sh exited with code 3: refresh token expired/);
      assert.equal(err.message.includes('secret-partial-token'), false);
      return true;
    });
    await assert.rejects(runTokenCommand(['sleep', '30'], 'alice', 300), /did not finish within 0\.3 s/);
    await assert.rejects(readAccessToken({ tokenCommand: [join(dir, 'no-such-program')] }, 'alice'), /could not be run \(ENOENT\)/);
  });

  it('a refused connection with a token logs nothing of the token', async () => {
    await writeFile(join(dir, 'carol.token'), 'Very-Secret-Token-77\n');
    const { log, lines } = memoryLogger();
    // Nothing listens on port 1 on loopback: the connect fails after the token was read.
    const pool = new ImapPool(imapSettings(1, { mode: 'oauth2', tokenFile: join(dir, '{user}.token') }), log);
    try {
      await assert.rejects(pool.withClient({ user: 'carol' }, async () => undefined), (err: unknown) => {
        assert.ok(err instanceof ImapError && !(err instanceof ImapAuthBackoffError), 'a network error is not backed off');
        assert.equal(String(err).includes('Very-Secret-Token-77'), false);
        return true;
      });
    } finally {
      await pool.close();
    }
    assert.equal(lines.join('\n').includes('Very-Secret-Token-77'), false);
  });
});

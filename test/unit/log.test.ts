import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';

function memory(): { stream: Writable; lines: () => Array<Record<string, unknown>>; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  const text = (): string => chunks.join('');
  const lines = (): Array<Record<string, unknown>> =>
    text()
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { stream, lines, text };
}

describe('createLogger', () => {
  it('writes one JSON object per line with level, time, name and message', () => {
    const m = memory();
    const log = createLogger('info', { destination: m.stream, name: 'reconcile' });
    log.info({ mailbox: '1000@default', ops: 2 }, 'reconciled');
    const [line] = m.lines();
    assert.equal(line?.level, 'info');
    assert.equal(line?.name, 'reconcile');
    assert.equal(line?.msg, 'reconciled');
    assert.equal(line?.mailbox, '1000@default');
    assert.equal(typeof line?.time, 'string');
  });

  it('drops lines below the level', () => {
    const m = memory();
    const log = createLogger('warn', { destination: m.stream });
    log.info('not shown');
    log.debug('not shown');
    log.warn('shown');
    assert.deepEqual(m.lines().map((l) => l.msg), ['shown']);
  });

  it('silent writes nothing', () => {
    const m = memory();
    createLogger('silent', { destination: m.stream }).error('nothing');
    assert.equal(m.text(), '');
  });

  it('redacts secrets at any depth, in log objects and child bindings', () => {
    const m = memory();
    const log = createLogger('debug', { destination: m.stream });
    log.info(
      {
        password: 'S1-top',
        auth: { user: 'alice@example.com', pass: 'S2-imap' },
        settings: { imap: { login: { masterUser: 'vmbridge', masterPassword: 'S3-master' } } },
        ami: { secret: 'S4-ami' },
        http: { headers: { authorization: 'Bearer S5-header' } },
        oauth: { accessToken: 'S6-token' },
        box: { options: { imappassword: 'S7-vmconf' } },
      },
      'connecting',
    );
    log.child({ mailbox: '1000@default', account: { user: 'bob', password: 'S8-child' } }).warn({ retry: 1 }, 'login failed');
    const text = m.text();
    for (const secret of ['S1-top', 'S2-imap', 'S3-master', 'S4-ami', 'S5-header', 'S6-token', 'S7-vmconf', 'S8-child']) {
      assert.equal(text.includes(secret), false, `${secret} leaked: ${text}`);
    }
    const [first, second] = m.lines();
    // The rest of the object is still there, with the secret keys marked.
    assert.deepEqual(first?.auth, { user: 'alice@example.com', pass: '[redacted]' });
    assert.equal((first?.settings as { imap: { login: { masterUser: string } } }).imap.login.masterUser, 'vmbridge');
    assert.equal(second?.mailbox, '1000@default');
    assert.deepEqual(second?.account, { user: 'bob', password: '[redacted]' });
  });

  it('does not change the object that was logged', () => {
    const m = memory();
    const auth = { user: 'u', pass: 'p' };
    createLogger('info', { destination: m.stream }).info({ auth }, 'x');
    assert.equal(auth.pass, 'p');
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { UnsafeNameError } from '../../src/errors.js';
import { assertSafeName, isSafeName, mailboxDir, MAX_NAME_LENGTH } from '../../src/spool/names.js';

describe('isSafeName', () => {
  for (const good of ['1000', 'default', 'from-internal', 'a_b', 'a.b', '+4930123', 'x'.repeat(MAX_NAME_LENGTH), '...', '.hidden']) {
    it(`accepts ${JSON.stringify(good)}`, () => assert.equal(isSafeName(good), true));
  }
  const bad: Array<[string, string]> = [
    ['', 'empty'],
    ['.', 'dot'],
    ['..', 'dot-dot'],
    ['a/b', 'slash'],
    ['../etc', 'parent path'],
    ['a\\b', 'backslash'],
    ['a\u0000b', 'NUL'],
    ['10 00', 'space'],
    ['1000\n', 'newline'],
    ['*97', 'star'],
    ['caf\u00e9', 'non-ASCII'],
    ['x'.repeat(MAX_NAME_LENGTH + 1), 'too long'],
  ];
  for (const [name, why] of bad) {
    it(`rejects ${why}`, () => assert.equal(isSafeName(name), false));
  }
});

describe('assertSafeName', () => {
  it('throws UnsafeNameError naming what and the value', () => {
    assert.throws(
      () => assertSafeName('mailbox', '../1000'),
      (err: unknown) => err instanceof UnsafeNameError && err.value === '../1000' && err.code === 'UNSAFE_NAME' && /^mailbox "\.\.\/1000"/.test(err.message),
    );
    assert.throws(() => assertSafeName('context', ''), UnsafeNameError);
    assert.doesNotThrow(() => assertSafeName('context', 'default'));
  });
});

describe('mailboxDir', () => {
  it('is <spool>/voicemail/<context>/<mailbox>, resolved', () => {
    assert.equal(mailboxDir('/var/spool/asterisk', { context: 'default', mailbox: '1000' }), '/var/spool/asterisk/voicemail/default/1000');
    assert.equal(mailboxDir('spool', { context: 'c', mailbox: 'm' }), join(resolve('spool'), 'voicemail', 'c', 'm'));
  });

  for (const ref of [
    { context: '..', mailbox: '1000' },
    { context: 'default', mailbox: '..' },
    { context: 'a/b', mailbox: '1000' },
    { context: 'default', mailbox: '' },
    { context: 'default', mailbox: '10\u000000' },
  ]) {
    it(`refuses ${JSON.stringify(ref)}`, () => {
      assert.throws(() => mailboxDir('/var/spool/asterisk', ref), UnsafeNameError);
    });
  }

  it('never yields a path outside <spool>/voicemail', () => {
    const root = resolve('/var/spool/asterisk/voicemail');
    for (const context of ['default', '...', '.x']) {
      const dir = mailboxDir('/var/spool/asterisk', { context, mailbox: '1000' });
      assert.ok(dir.startsWith(`${root}/`), dir);
    }
  });
});

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/load-settings.js';
import { ConfigError } from '../../src/errors.js';
import { DoveadmError, parseStatusAnswer, statusRequestBody } from '../../src/imap/doveadm.js';

describe('doveadm mailboxStatus answer', () => {
  it('asks every user’s folders with the four fields the quick look compares', () => {
    assert.deepEqual(JSON.parse(statusRequestBody()), [['mailboxStatus', { allUsers: true, field: ['messages', 'uidnext', 'uidvalidity', 'highestmodseq'], mailboxMask: ['*'] }, 'status']]);
  });

  it('gives each user its folders as uidvalidity/uidnext/messages/highestmodseq', () => {
    const text = JSON.stringify([['doveadmResponse', [
      { username: 'u1000', mailbox: 'INBOX', messages: '1', uidnext: '2', uidvalidity: '1796655140', highestmodseq: '2' },
      { username: 'u1000', mailbox: 'Work', messages: '0', uidnext: '1', uidvalidity: '1796655139', highestmodseq: '1' },
      { username: 'u1001', mailbox: 'INBOX', messages: '3', uidnext: '9', uidvalidity: '7', highestmodseq: '12' },
      // A row without its fields (a folder that could not be opened) says nothing.
      { username: 'u1002', mailbox: 'INBOX', error: 'x' },
    ], 'status']]);
    const all = parseStatusAnswer(text);
    assert.deepEqual([...all.keys()], ['u1000', 'u1001']);
    assert.equal(all.get('u1000')?.get('INBOX'), '1796655140/2/1/2');
    assert.equal(all.get('u1000')?.get('Work'), '1796655139/1/0/1');
    assert.equal(all.get('u1001')?.get('INBOX'), '7/9/3/12');
  });

  it('refuses an error, another shape, or no JSON, each with a DoveadmError', () => {
    for (const text of ['<html>', '{}', JSON.stringify([['error', { type: 'exitCode', exitCode: 68 }, 'status']]), JSON.stringify([['doveadmResponse', [], 'other']])]) {
      assert.throws(() => parseStatusAnswer(text), DoveadmError, text);
    }
  });
});

describe('imap.doveadm settings', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-doveadm-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const load = async (doveadm: string) => {
    const path = join(dir, `s-${Math.random()}.yaml`);
    await writeFile(path, `imap:\n  host: mail.example.com\n  doveadm:\n${doveadm}`);
    return loadSettings({ file: path, env: {}, defaultFile: join(dir, 'absent.yaml') });
  };

  it('reads the API key from its file', async () => {
    const keyFile = join(dir, 'key');
    await writeFile(keyFile, 'sesame\n', { mode: 0o600 });
    const { settings } = await load(`    url: http://127.0.0.1:8080/doveadm/v1\n    apiKeyFile: ${keyFile}\n`);
    assert.equal(settings.imap.doveadm?.apiKey, 'sesame');
    assert.equal(settings.imap.doveadm?.timeoutSeconds, 60);
  });

  it('refuses no key, two keys, or a URL that is not http(s)', async () => {
    await assert.rejects(load('    url: http://127.0.0.1:8080/doveadm/v1\n'), (e: unknown) => e instanceof ConfigError && /neither imap\.doveadm\.apiKeyFile nor imap\.doveadm\.apiKey/.test(e.message));
    await assert.rejects(load(`    url: http://127.0.0.1:8080/doveadm/v1\n    apiKey: a\n    apiKeyFile: ${join(dir, 'key')}\n`), (e: unknown) => e instanceof ConfigError && /both set/.test(e.message));
    await assert.rejects(load('    url: ftp://127.0.0.1/doveadm\n    apiKey: a\n'), (e: unknown) => e instanceof ConfigError && /imap\.doveadm\.url/.test(e.message));
  });
});

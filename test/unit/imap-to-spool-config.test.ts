/**
 * The settings and voicemail.conf values that mail-client-to-spool changes depend on: the AMI
 * secret, backupdeleted as app_voicemail reads it, the lock mode, and which AMI events count.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { loadSettings } from '../../src/config/load-settings.js';
import { boxBackupDeleted, readVoicemailConf } from '../../src/config/voicemail-conf.js';
import { AmiMessage } from '../../src/mwi/ami-client.js';
import { messageWaitingMailbox } from '../../src/mwi/ami-session.js';
import { SpoolChanger, spoolLockmode } from '../../src/store/spool-changes.js';
import { hearMessage, leaveVoicemail, listFolder } from '../support/asterisk-spool.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmbridge-i2s-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const load = (env: Record<string, string>) => loadSettings({ env: { VMBRIDGE_IMAP_HOST: 'mail.example.com', ...env }, defaultFile: join(dir, 'absent.yaml') });

describe('settings for mail-client changes', () => {
  it('defaults: imapToSpool on, IDLE for 100 accounts, no AMI, lockmode from asterisk.conf or lockfile', async () => {
    const { settings } = await load({});
    assert.equal(settings.sync.imapToSpool, true);
    assert.equal(settings.imap.idle.maxAccounts, 100);
    assert.equal(settings.asterisk.ami, undefined);
    assert.equal(await spoolLockmode(settings), 'lockfile');
    const conf = join(dir, 'asterisk.conf');
    await writeFile(conf, '[options]\nlockmode = flock\n');
    assert.equal(await spoolLockmode((await load({ VMBRIDGE_SPOOL_ASTERISK_CONF: conf })).settings), 'flock');
    assert.equal(await spoolLockmode((await load({ VMBRIDGE_SPOOL_ASTERISK_CONF: conf, VMBRIDGE_SPOOL_LOCKMODE: 'lockfile' })).settings), 'lockfile');
  });

  it('asterisk.ami: the secret is read from secretFile; port defaults to 5038', async () => {
    const file = join(dir, 'ami-secret');
    await writeFile(file, 's3cret\n', { mode: 0o600 });
    const { settings, warnings } = await load({ VMBRIDGE_ASTERISK_AMI__HOST: '127.0.0.1', VMBRIDGE_ASTERISK_AMI__USERNAME: 'vmbridge', VMBRIDGE_ASTERISK_AMI__SECRET_FILE: file });
    assert.deepEqual(warnings, []);
    assert.equal(settings.asterisk.ami?.secret, 's3cret');
    assert.equal(settings.asterisk.ami?.port, 5038);
    assert.equal(settings.asterisk.ami?.useVoicemailActions, true);
  });

  it('asterisk.ami: no secret, or both secret and secretFile, is a ConfigError naming the key', async () => {
    const base = { VMBRIDGE_ASTERISK_AMI__HOST: '127.0.0.1', VMBRIDGE_ASTERISK_AMI__USERNAME: 'vmbridge' };
    await assert.rejects(load(base), (err: unknown) => err instanceof ConfigError && err.key === 'asterisk.ami.secret');
    const file = join(dir, 'ami-secret-2');
    await writeFile(file, 'x\n', { mode: 0o600 });
    await assert.rejects(load({ ...base, VMBRIDGE_ASTERISK_AMI__SECRET: 'y', VMBRIDGE_ASTERISK_AMI__SECRET_FILE: file }), (err: unknown) => err instanceof ConfigError && err.key === 'asterisk.ami.secretFile' && !err.message.includes('"y"'));
  });
});

describe('backupdeleted, as app_voicemail reads it', () => {
  it('a number, yes = 100, anything else 0; the mailbox wins over [general]', async () => {
    const conf = join(dir, 'voicemail.conf');
    await writeFile(conf, [
      '[general]', 'backupdeleted=7', '',
      '[default]',
      '1000 => 1,A,a@example.com',
      '1001 => 1,B,b@example.com,,backupdeleted=yes',
      '1002 => 1,C,c@example.com,,backupdeleted=no',
      '1003 => 1,D,d@example.com,,backupdeleted=20000',
      '1004 => 1,E,e@example.com,,backupdeleted=-1',
      '',
    ].join('\n'));
    const vm = await readVoicemailConf(conf);
    const by = (m: string): number => boxBackupDeleted(vm, vm.boxes.find((b) => b.mailbox === m)!);
    assert.deepEqual(['1000', '1001', '1002', '1003', '1004'].map(by), [7, 100, 0, 9999, 100]);
  });
});

describe('AMI MessageWaiting', () => {
  const event = (headers: [string, string][]) => new AmiMessage(headers);
  it('names the mailbox of a MessageWaiting event, and nothing else', () => {
    assert.deepEqual(messageWaitingMailbox(event([['Event', 'MessageWaiting'], ['Privilege', 'call,all'], ['Mailbox', '1000@default'], ['Waiting', '1']])), { mailbox: '1000', context: 'default' });
    assert.equal(messageWaitingMailbox(event([['Event', 'Newexten'], ['Mailbox', '1000@default']])), undefined);
    assert.equal(messageWaitingMailbox(event([['Event', 'MessageWaiting'], ['Mailbox', '1000']])), undefined, 'no context');
    assert.equal(messageWaitingMailbox(event([['Event', 'MessageWaiting'], ['Mailbox', '../x@default']])), undefined, 'unsafe name');
  });
});

describe('SpoolChanger without AMI (files under the folder lock)', () => {
  it('a move into a full folder is not forced; a repeated move or removal counts as done', async () => {
    const spoolDir = join(dir, 'spool');
    const ref = { context: 'default', mailbox: '1000' };
    const a = await leaveVoicemail(spoolDir, ref, { duration: 2 });
    const b = await leaveVoicemail(spoolDir, ref, { duration: 2 });
    await hearMessage(spoolDir, ref, a.msgnum);
    const changer = new SpoolChanger({ spoolDir, lockmode: 'lockfile' });
    await changer.assertNotInVoiceMailMain(ref); // without AMI there is no way to know: no error

    const full = await changer.move({ ref, maxmsg: 1 }, b.msgId, 'INBOX', 'Old');
    assert.equal(full.done, false, 'Old already holds maxmsg messages');
    assert.deepEqual((await listFolder(spoolDir, ref, 'INBOX')).map((m) => m.msgId), [b.msgId], 'nothing changed');

    const moved = await changer.move({ ref }, b.msgId, 'INBOX', 'Old');
    assert.ok(moved.done && !moved.alreadyDone);
    const again = await changer.move({ ref }, b.msgId, 'INBOX', 'Old');
    assert.ok(again.done && again.alreadyDone);

    const removed = await changer.remove({ ref, backupDeleted: 5 }, a.msgId, 'Old');
    assert.ok(removed.done && !removed.alreadyDone);
    assert.deepEqual((await listFolder(spoolDir, ref, 'Deleted')).map((m) => m.msgId), [a.msgId]);
    assert.deepEqual((await listFolder(spoolDir, ref, 'Old')).map((m) => [m.msgnum, m.msgId]), [[0, b.msgId]], 'renumbered');
    const removedAgain = await changer.remove({ ref, backupDeleted: 5 }, a.msgId, 'Old');
    assert.ok(removedAgain.done && removedAgain.alreadyDone);
  });
});

/** The pure parts of the ODBC store: dir layout, row reading, recording checks, store selection. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { settingsSchema } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';
import { openStore } from '../../src/store/open.js';
import { DirLayout, isPlainIdentifier, messageFromRow, missingColumns, parseMessagePath, recordingProblem } from '../../src/store/odbc/rows.js';
import { OdbcStore, OdbcTableError } from '../../src/store/odbc/odbc-store.js';

describe('ODBC rows', () => {
  const layout = new DirLayout('/var/spool/asterisk/');
  it('maps dir to mailbox and folder, and names what is not one', () => {
    assert.deepEqual(layout.parse('/var/spool/asterisk/voicemail/default/1000/INBOX'), { ref: { context: 'default', mailbox: '1000' }, folder: 'INBOX' });
    assert.match((layout.parse('/srv/voicemail/default/1000/INBOX') as { problem: string }).problem, /not under \/var\/spool\/asterisk\/voicemail\//);
    assert.match((layout.parse('/var/spool/asterisk/voicemail/default/1000') as { problem: string }).problem, /<context>\/<mailbox>\/<folder>/);
    assert.match((layout.parse('/var/spool/asterisk/voicemail/../1000/INBOX') as { problem: string }).problem, /not a safe name/);
    assert.equal(layout.dir({ context: 'sales', mailbox: '7' }, 'Old'), '/var/spool/asterisk/voicemail/sales/7/Old');
  });

  it('reads a row as the envelope Asterisk writes for it', () => {
    const row = { dir: '/var/spool/asterisk/voicemail/default/1000/INBOX', msgnum: 3, context: 'from-pstn', callerid: '"A" <1>', origtime: '1796600000', duration: '9', flag: '', mailboxuser: '1000', mailboxcontext: 'default', msg_id: '1796600000-0000abcd' };
    const r = messageFromRow(row, 'voicemessages', 'INBOX', ['WAV']);
    assert.ok(r.message);
    assert.equal(r.message.id, '1796600000-0000abcd');
    assert.equal(r.message.msgnum, 3);
    assert.equal(r.message.envelope.origtime, 1796600000);
    assert.equal(r.message.envelope.context, 'from-pstn');
    assert.deepEqual(r.message.audio, [{ ext: 'WAV', path: '/var/spool/asterisk/voicemail/default/1000/INBOX/msg0003.WAV' }]);
    const noId = messageFromRow({ ...row, msg_id: null }, 'voicemessages', 'INBOX', ['wav']);
    assert.equal(noId.message?.derivedId, true, 'a row without msg_id gets a derived identity');
    assert.match(messageFromRow({ ...row, msgnum: 'x' }, 'voicemessages', 'INBOX', ['wav']).problem!, /^voicemessages row \(dir=".*INBOX", msgnum=x\): msgnum is not a message number/);
  });

  it('checks recordings by their bytes, and table names and columns', () => {
    assert.equal(recordingProblem('wav', Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVE'), Buffer.alloc(40)])), undefined);
    assert.match(recordingProblem('WAV', Buffer.from('hello world, not audio'))!, /not a WAV file/);
    assert.equal(recordingProblem('gsm', Buffer.alloc(66, 0xd5)), undefined);
    assert.match(recordingProblem('gsm', Buffer.alloc(65, 0xd5))!, /not GSM/);
    assert.match(recordingProblem('ulaw', Buffer.alloc(0))!, /empty/);
    assert.equal(isPlainIdentifier('voicemessages'), true);
    assert.equal(isPlainIdentifier('vm; DROP TABLE x'), false);
    assert.throws(() => new OdbcStore({ url: 'postgres://x@127.0.0.1/db', urlSetting: 'spool.odbc.url', table: 'vm;--', asteriskSpoolDir: '/s', localSpoolDir: '/s', lockmode: 'lockfile', recordingExt: 'wav', audioOnDisk: false, pollSeconds: 0 }), OdbcTableError);
    assert.deepEqual(missingColumns(['DIR', 'msgnum', 'recording']), ['context', 'callerid', 'origtime', 'duration', 'flag', 'mailboxuser', 'mailboxcontext', 'msg_id']);
    assert.deepEqual(parseMessagePath('/a/b/INBOX/msg0012.WAV'), { dir: '/a/b/INBOX', msgnum: 12, ext: 'WAV' });
  });

  it('odbcstorage= without a database URL, nor the Asterisk files to find it in, is an error at start naming the setting', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmbridge-open-'));
    try {
      const conf = join(dir, 'voicemail.conf');
      await writeFile(conf, '[general]\nodbcstorage=asterisk\n\n[default]\n1000 => 1234,A\n');
      const settings = settingsSchema.parse({ spool: { dir, voicemailConf: conf }, imap: { host: '127.0.0.1' }, email: { from: 'a@b.invalid', messageIdDomain: 'x.invalid' } });
      // Nor a res_odbc.conf beside voicemail.conf to work it out from: both are named.
      await assert.rejects(openStore(settings), (err: unknown) => err instanceof ConfigError && /odbcstorage=.*res_odbc\.conf: no such file.*Set spool\.odbc\.urlFile/.test(err.message));
      const file = join(dir, 'url');
      await writeFile(file, 'ftp://nope\n');
      const withFile = settingsSchema.parse({ ...settings, spool: { ...settings.spool, odbc: { urlFile: file } } });
      await assert.rejects(openStore(withFile), (err: unknown) => err instanceof ConfigError && /spool\.odbc\.urlFile: database scheme "ftp" is not supported/.test(err.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

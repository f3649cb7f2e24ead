/**
 * Spool to IMAP against a real private Dovecot and Redis: initial import, new messages, and every
 * phone-side change made the way Asterisk makes it. An independent imapflow session plays the
 * user's mail client; mailparser reads what it sees.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { ImapPool } from '../../src/imap/pool.js';
import type { Service } from '../../src/service.js';
import { loadDirectory } from '../../src/service.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { FileSpoolStore } from '../../src/store/file-spool.js';
import { reconcileMailbox } from '../../src/sync/reconcile.js';
import { StateStore } from '../../src/sync/state-store.js';
import { Redis } from 'ioredis';
import { deleteMessage, hearMessage, leaveVoicemail, listFolder, moveMessage } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { VOICEMAIL_FOLDERS, type MailClient } from '../support/mail-client.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const box = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });
const mid = (ref: MailboxRef, id: string): string => identityMessageId(ref, id, DOMAIN);

describe('spool to IMAP on real Dovecot and Redis', { timeout: 240_000 }, () => {
  let h: Harness;
  let service: Service;
  const refs = [box('1000'), box('1001'), box('1002')];
  const clients = new Map<string, MailClient>();
  const client = (ref: MailboxRef): MailClient => clients.get(ref.mailbox)!;

  before(async () => {
    h = await startHarness({ boxes: refs.map((r) => ({ mailbox: r.mailbox, fullName: `Owner ${r.mailbox}` })) });
    for (const ref of refs) clients.set(ref.mailbox, await h.mail(ref));
  });
  after(async () => {
    await h?.stop();
  });

  it('imports 3 mailboxes x 50 voicemails once each, and a second run plans nothing', async () => {
    const ids = new Map<string, string[]>();
    for (const ref of refs) {
      const list: string[] = [];
      for (let i = 0; i < 50; i++) {
        const left = await leaveVoicemail(h.spoolDir, ref, { callerid: `"Caller ${i}" <555${String(i).padStart(4, '0')}>`, duration: 3 + (i % 7), origtime: 1_795_000_000 + i * 60 });
        list.push(left.msgId);
      }
      ids.set(ref.mailbox, list);
    }
    service = await h.startService();
    for (const ref of refs) {
      const seen = await waitFor(`50 emails for ${ref.mailbox}`, async () => {
        const all = await client(ref).list(['INBOX']);
        return all.length >= 50 ? all : undefined;
      }, { timeoutMs: 60_000, intervalMs: 200 });
      assert.equal(seen.length, 50, 'exactly 50, no duplicates');
      const got = new Set(seen.map((e) => e.messageId));
      for (const id of ids.get(ref.mailbox)!) assert.ok(got.has(mid(ref, id)), `email for ${id}`);
      for (const e of seen) assert.equal(e.flags.has('\\Seen'), false, 'new voicemail is unseen');
    }

    // A second, independent run of the same reconcile plans nothing.
    const redis = new Redis(h.redisUrl);
    const pool = new ImapPool(h.settings.imap, h.log);
    try {
      const directory = await loadDirectory(h.settings, h.log);
      for (const ref of refs) {
        const result = await reconcileMailbox(
          { store: new FileSpoolStore({ spoolDir: h.spoolDir, lockmode: 'lockfile' }), settings: h.settings, state: new StateStore(redis, h.settings.redis.prefix), imap: pool, log: h.log },
          directory.boxes.get(`${ref.mailbox}@default`)!,
          { dryRun: true },
        );
        assert.deepEqual(result.plan.ops, [], `${ref.mailbox}: nothing to do`);
      }
    } finally {
      await pool.close();
      redis.disconnect();
    }
  });

  it('lost sync state is rebuilt by identity, and stale UIDs (a UIDVALIDITY change) are re-matched: no duplicate, no deletion', async () => {
    const ref = box('1000');
    const redis = new Redis(h.redisUrl);
    const key = `${h.settings.redis.prefix}:state:default:1000`;
    try {
      const before = await client(ref).list(VOICEMAIL_FOLDERS);
      assert.equal(await redis.hlen(key), before.length);

      await redis.del(key); // Redis flushed
      await service.requester.request(ref, 'test');
      await waitFor('records rebuilt', async () => (await redis.hlen(key)) === before.length || undefined);
      const rebuilt = await client(ref).list(VOICEMAIL_FOLDERS);
      assert.deepEqual(rebuilt.map((e) => `${e.uid}:${e.messageId}`).sort(), before.map((e) => `${e.uid}:${e.messageId}`).sort(), 'the same emails, none added or removed');

      // Every record now points at a folder incarnation that no longer exists.
      for (const [id, json] of Object.entries(await redis.hgetall(key))) {
        await redis.hset(key, id, JSON.stringify({ ...JSON.parse(json), uid: 99_999, uidValidity: '1' }));
      }
      await service.requester.request(ref, 'test');
      await waitFor('records re-matched', async () => {
        const all = Object.values(await redis.hgetall(key)).map((j) => JSON.parse(j) as { uid: number });
        return all.every((r) => r.uid !== 99_999) || undefined;
      });
      const after = await client(ref).list(VOICEMAIL_FOLDERS);
      assert.deepEqual(after.map((e) => `${e.uid}:${e.messageId}`).sort(), before.map((e) => `${e.uid}:${e.messageId}`).sort());
    } finally {
      redis.disconnect();
    }
  });

  it('a new voicemail appears as an email with readable headers, X-Asterisk-VM-* headers and its recordings', async () => {
    const ref = box('1001');
    const left = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Zoë Example" <5551234>', duration: 75, origtime: 1_795_347_150 });
    const email = await waitFor('the new email', async () => (await client(ref).list(['INBOX'])).find((e) => e.messageId === mid(ref, left.msgId)));
    const parsed = await simpleParser(await client(ref).source('INBOX', email.uid));
    assert.equal(parsed.subject, 'Voicemail from Zoë Example (5551234), 1:15');
    assert.match(parsed.text ?? '', /5551234/);
    assert.match(parsed.text ?? '', /1:15/);
    const header = (name: string): string => String(parsed.headers.get(name.toLowerCase()) ?? '');
    assert.equal(header('X-Asterisk-VM-Context'), 'default');
    assert.equal(header('X-Asterisk-VM-Extension'), '1001');
    assert.equal(header('X-Asterisk-VM-Caller-ID-Num'), '5551234');
    assert.equal(header('X-Asterisk-VM-Duration'), '75');
    assert.equal(header('X-Asterisk-VM-Orig-time'), '1795347150');
    assert.equal(header('X-Asterisk-VM-Message-ID'), left.msgId);
    assert.equal(parsed.messageId, mid(ref, left.msgId));
    const files = await listFolder(h.spoolDir, ref, 'INBOX');
    const mine = files.find((f) => f.msgId === left.msgId)!;
    const num = String(mine.msgnum).padStart(4, '0');
    // By default one MP3, made from the best recording (the PCM msgNNNN.wav); the spool is untouched.
    assert.deepEqual(parsed.attachments.map((a) => [a.filename, a.contentType]), [[`msg${num}.mp3`, 'audio/mpeg']]);
    assert.equal(parsed.attachments[0]!.content.subarray(0, 2).readUInt16BE(0) & 0xffe0, 0xffe0, 'an MPEG audio frame');
    const spoolFiles = await readdir(join(h.spoolDir, 'voicemail', 'default', '1001', 'INBOX'));
    assert.deepEqual(spoolFiles.filter((f) => f.startsWith(`msg${num}.`)).sort(), [`msg${num}.WAV`, `msg${num}.gsm`, `msg${num}.txt`, `msg${num}.wav`].sort());
  });

  it('heard on the phone sets \\Seen; urgent is \\Flagged; saved to Work/Family/Friends moves; deleted on the phone expunges', async () => {
    const ref = box('1002');
    const mc = client(ref);
    const a = await leaveVoicemail(h.spoolDir, ref, { callerid: '"A" <1>', duration: 4 });
    const b = await leaveVoicemail(h.spoolDir, ref, { callerid: '"B" <2>', duration: 4 });
    const c = await leaveVoicemail(h.spoolDir, ref, { callerid: '"C" <3>', duration: 4 });
    const d = await leaveVoicemail(h.spoolDir, ref, { callerid: '"D" <4>', duration: 4 });
    const u = await leaveVoicemail(h.spoolDir, ref, { callerid: '"U" <5>', duration: 4, urgent: true });
    const find = async (id: string) => (await mc.list(VOICEMAIL_FOLDERS)).filter((e) => e.messageId === mid(ref, id));
    await waitFor('all five emails', async () => (await mc.list(['INBOX'])).length >= 55 || undefined, { timeoutMs: 30_000 });

    const urgent = await find(u.msgId);
    assert.equal(urgent.length, 1);
    assert.equal(urgent[0]!.flags.has('\\Flagged'), true, 'urgent is flagged');
    assert.equal(urgent[0]!.flags.has('\\Seen'), false, 'urgent is unseen');

    const num = async (id: string, folder: 'INBOX' | 'Old' | 'Work' | 'Family' | 'Friends' | 'Urgent') =>
      (await listFolder(h.spoolDir, ref, folder)).find((m) => m.msgId === id)!.msgnum;

    await hearMessage(h.spoolDir, ref, await num(a.msgId, 'INBOX'));
    await waitFor('heard -> \\Seen', async () => {
      const e = await find(a.msgId);
      return e.length === 1 && e[0]!.folder === 'INBOX' && e[0]!.flags.has('\\Seen');
    });

    for (const [msg, folder] of [[b, 'Work'], [c, 'Family'], [d, 'Friends']] as const) {
      await moveMessage(h.spoolDir, ref, 'INBOX', await num(msg.msgId, 'INBOX'), folder);
      await waitFor(`saved to ${folder}`, async () => {
        const e = await find(msg.msgId);
        return e.length === 1 && e[0]!.folder === folder;
      });
    }

    // Deleted on the phone: exactly that email is expunged; the user's own \Deleted mail stays.
    await mc.client.append('INBOX', Buffer.from('From: a@b\r\nSubject: mine\r\nMessage-ID: <mine@example>\r\n\r\nhello\r\n'), ['\\Deleted']);
    await deleteMessage(h.spoolDir, ref, 'Old', await num(a.msgId, 'Old'));
    await waitFor('deleted on phone -> email gone', async () => (await find(a.msgId)).length === 0);
    const all = await mc.list(['INBOX'], { includeDeleted: true });
    assert.equal(all.filter((e) => e.messageId === mid(ref, a.msgId)).length, 0, 'expunged, not just flagged');
    assert.equal(all.filter((e) => e.messageId === '<mine@example>').length, 1, "the user's own \\Deleted message is untouched");

    // Urgent heard: to Old, \Seen.
    await moveMessage(h.spoolDir, ref, 'Urgent', await num(u.msgId, 'Urgent'), 'Old');
    await waitFor('urgent heard -> \\Seen', async () => {
      const e = await find(u.msgId);
      return e.length === 1 && e[0]!.flags.has('\\Seen');
    });
  });

  it('a voicemail from before Asterisk 11 (no msg_id) keeps its email when Asterisk later adds a msg_id', async () => {
    const ref = box('1001');
    const mc = client(ref);
    const left = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Old Timer" <5559999>', duration: 7, msgId: null });
    assert.equal(left.msgId, '');
    const derivedEmail = await waitFor('the email of the msg_id-less voicemail', async () =>
      (await mc.list(['INBOX'])).find((e) => e.messageId.startsWith('<vm.d-')));
    // Asterisk rewrites the envelope with a msg_id (ast_config_text_file_save style, in place).
    const text = await readFile(left.txtPath, 'utf8');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(left.txtPath, text.replace(/^duration=/m, 'msg_id = 1795000000-0000abcd\nduration=').replace(/^;\n; Message Information file\n;\n/, ';!\n;! Automatically generated configuration file\n;!\n'));
    await service.requester.request(ref, 'test');
    await new Promise((r) => setTimeout(r, 1500));
    await service.requester.request(ref, 'test');
    await new Promise((r) => setTimeout(r, 1000));
    const after = (await mc.list(['INBOX'])).filter((e) => e.messageId === derivedEmail.messageId || e.messageId === mid(ref, '1795000000-0000abcd'));
    assert.equal(after.length, 1, 'still exactly one email');
    assert.equal(after[0]!.uid, derivedEmail.uid, 'the same email: not deleted and appended again');
  });

  it('bad input is logged with the file at fault, once, and every voicemail Asterisk counts becomes an email', async () => {
    const ref = box('1000');
    const mc = client(ref);
    const inbox = join(h.spoolDir, 'voicemail', 'default', '1000', 'INBOX');
    const before = (await mc.list(['INBOX'])).length;
    // Damaged envelopes, each with audio beside it: Asterisk counts every one of them on the lamp.
    const { writeFile } = await import('node:fs/promises');
    const whole = (id: string): string => `[message]\norigmailbox=1000\ncontext=default\nexten=1000\ncallerid="Damaged" <5550900>\norigtime=1795000900\nmsg_id=${id}\nduration=4\n`;
    const damaged: Record<string, Buffer> = {
      'msg0900.txt': Buffer.from('this is not an envelope\n'),
      'msg0901.txt': Buffer.from([0, 1, 2, 3, 255, 254, 0, 0, 10]),
      'msg0902.txt': Buffer.from(whole('1795000900-00000902').slice(0, 60)), // cut short
      'msg0903.txt': Buffer.from(`${whole('1795000900-00000903')}callerid="Second" <5550903>\nduration=5\n`), // duplicate keys
      'msg0904.txt': Buffer.from(whole('1795000900-00000904').replace('[message]\n', '')), // no [message]
      // Asterisk 22.10.1's bytes for the caller name `Eve` CR LF CR LF `Action: UserEvent` CR LF `UserEvent: x`.
      'msg0905.txt': Buffer.from(whole('1795000900-00000905').replace('"Damaged"', '"Eve\\\r\\\n\\\r\\\nAction: UserEvent\\\r\\\nUserEvent: x"'), 'latin1'),
    };
    for (const [name, data] of Object.entries(damaged)) {
      await writeFile(join(inbox, name), data);
      await writeFile(join(inbox, name.replace('.txt', '.wav')), Buffer.alloc(100));
    }
    // CR/LF and non-ASCII in the caller ID name; ISO-8859-1 bytes in another.
    const inj = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Evil\r\nBcc: victim@example.com\r\nX: y" <5550000>', duration: 9 });
    const latin = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Jos\u00e9" <5550001>', duration: 9, latin1: true });
    const good = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Fine" <5550002>', duration: 9 });
    const expected = before + Object.keys(damaged).length + 3;
    await waitFor('every message', async () => (await mc.list(['INBOX'])).length >= expected || undefined, { timeoutMs: 20_000 });
    const emails = await mc.list(['INBOX']);
    assert.equal(emails.length, expected, 'every message is imported, the damaged ones too, each once');
    for (const id of [inj.msgId, latin.msgId, good.msgId, '1795000900-00000903', '1795000900-00000904', '1795000900-00000905']) {
      assert.ok(emails.some((e) => e.messageId === mid(ref, id)), id);
    }

    const injected = emails.find((e) => e.messageId === mid(ref, inj.msgId))!;
    const raw = await mc.source('INBOX', injected.uid);
    const headerBlock = raw.toString('latin1').split('\r\n\r\n')[0]!;
    assert.equal(/^Bcc:/im.test(headerBlock), false, 'no injected header');
    assert.equal(/^X: y/im.test(headerBlock), false, 'no injected header');
    const parsed = await simpleParser(raw);
    assert.match(parsed.subject ?? '', /^Voicemail from Evil Bcc: victim@example\.com X: y \(5550000\), 0:09$/);

    const eve = await simpleParser(await mc.source('INBOX', emails.find((e) => e.messageId === mid(ref, '1795000900-00000905'))!.uid));
    assert.equal(eve.subject, 'Voicemail from Eve Action: UserEvent UserEvent: x (5550900), 0:04');
    assert.equal(eve.headers.has('action'), false, 'no injected header');
    const second = await simpleParser(await mc.source('INBOX', emails.find((e) => e.messageId === mid(ref, '1795000900-00000903'))!.uid));
    assert.equal(second.subject, 'Voicemail from Second (5550903), 0:05', 'the last of repeated keys, as Asterisk');

    const latinEmail = emails.find((e) => e.messageId === mid(ref, latin.msgId))!;
    const latinParsed = await simpleParser(await mc.source('INBOX', latinEmail.uid));
    assert.equal(latinParsed.subject, 'Voicemail from José (5550001), 0:09');

    // Read again: each damaged file is named once in the log, with its line where it has one.
    await service.requester.request(ref, 'test');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await mc.list(['INBOX'])).length, expected, 'no duplicate on the next reconcile');
    const warnings = h.logLines.filter((l) => l.includes('spool file partly read'));
    for (const name of ['msg0900.txt', 'msg0901.txt', 'msg0902.txt', 'msg0904.txt']) {
      assert.equal(warnings.filter((l) => l.includes(name)).length, 1, `${name} named once`);
    }
    assert.ok(warnings.some((l) => l.includes('msg0900.txt') && l.includes('line 1')), 'the line at fault');
    assert.equal(warnings.some((l) => l.includes('msg0905.txt') || l.includes('msg0903.txt')), false, 'nothing to say of files Asterisk reads whole');
    assert.equal(h.logLines.some((l) => l.includes('spool file skipped') && l.includes('msg090')), false, 'none skipped');
  });

  it('a voicemail.conf line that does not parse and an unsafe mailbox name are logged; the others still sync', async () => {
    await h.writeConf('[default]\nthis line is nonsense\n../../etc => 1,Bad,bad@example.invalid\n');
    await service.reload();
    const lines = h.logLines.filter((l) => l.includes('voicemail.conf line skipped'));
    assert.ok(lines.some((l) => l.includes(h.confPath) && l.includes('nonsense') || l.includes('"line"')), 'bad line named with its file');
    assert.ok(lines.some((l) => l.includes('../../etc') || l.includes('not a safe')), 'unsafe mailbox reported');
    const ref = box('1001');
    const left = await leaveVoicemail(h.spoolDir, ref, { callerid: '"After reload" <1>', duration: 2 });
    await waitFor('sync goes on after a bad config line', async () => (await client(ref).list(['INBOX'])).some((e) => e.messageId === mid(ref, left.msgId)));
  });
});

/**
 * The Asterisk spool stand-in against what a real Asterisk 22 left on disk (fixtures copied byte
 * for byte) and against the order of file events it produced.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { watch } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MailboxRef } from '../../src/spool/types.js';
import {
  deleteMessage,
  folderDir,
  formatOrigdate,
  hearMessage,
  holdLock,
  lastMessageIndex,
  leaveVoicemail,
  listFolder,
  LockTimeoutError,
  lockFolder,
  mailboxDir,
  moveMessage,
  saveToFolder,
  withFolderLock,
} from '../support/asterisk-spool.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/asterisk/', import.meta.url));
const fixture = (rel: string): Promise<Buffer> => readFile(join(FIXTURES, rel));

let root: string;
let boxCounter = 0;
/** A fresh mailbox per test, so tests do not see each other's messages. */
const freshBox = (): MailboxRef => ({ context: 'default', mailbox: String(2000 + ++boxCounter) });

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'vmb-spool-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('asterisk spool stand-in: leaving a voicemail', () => {
  it('writes msgNNNN.txt byte for byte as Asterisk 22 did (fixture 1000/INBOX/msg0000.txt)', async () => {
    const ref: MailboxRef = { context: 'default', mailbox: '1000' };
    const spool = join(root, 'exact');
    const left = await leaveVoicemail(spool, ref, {
      callerid: '"Test Caller" <5551234>',
      duration: 6,
      origtime: 1795347150,
      msgId: '1795347150-00000001',
      envelope: { context: 'vm-leave', callerchan: 'Local/1000@vm-leave-00000001;2' },
    });
    assert.deepEqual(left, { folder: 'INBOX', msgnum: 0, msgId: '1795347150-00000001', txtPath: join(spool, 'voicemail/default/1000/INBOX/msg0000.txt') });
    assert.equal((await readFile(left.txtPath)).toString('latin1'), (await fixture('spool/voicemail/default/1000/INBOX/msg0000.txt')).toString('latin1'));
  });

  it('an urgent message goes to Urgent/ with flag=Urgent, with the same keys as the fixture', async () => {
    const ref = freshBox();
    const left = await leaveVoicemail(root, ref, { urgent: true, origtime: 1795347257 });
    assert.equal(left.folder, 'Urgent');
    assert.equal(left.txtPath, join(folderDir(root, ref, 'Urgent'), 'msg0000.txt'));
    const keys = (text: string): string[] => text.split('\n').filter((l) => l.includes('=')).map((l) => l.split('=')[0]!);
    const mine = await readFile(left.txtPath, 'utf8');
    const real = (await fixture('spool-with-urgent/voicemail/default/1000/Urgent/msg0000.txt')).toString('utf8');
    assert.deepEqual(keys(mine), keys(real));
    assert.match(mine, /^flag=Urgent$/m);
    assert.match(mine, /^origdate=Sun Nov 22 11:34:17 AM UTC 2026$/m);
    assert.deepEqual(await listFolder(root, ref, 'INBOX'), []);
  });

  it('the envelope key order is exactly the fixture order; msg_id is <origtime>-<8 hex>', async () => {
    const ref = freshBox();
    const left = await leaveVoicemail(root, ref, { origtime: 1795000000 });
    const text = await readFile(left.txtPath, 'utf8');
    const keys = text.split('\n').filter((l) => l.includes('=')).map((l) => l.split('=')[0]);
    assert.deepEqual(keys, ['origmailbox', 'context', 'exten', 'rdnis', 'priority', 'callerchan', 'callerid', 'origdate', 'origtime', 'category', 'msg_id', 'flag', 'duration']);
    assert.match(left.msgId, /^1795000000-[0-9a-f]{8}$/);
    assert.ok(text.startsWith(';\n; Message Information file\n;\n[message]\n'));
    assert.ok(text.endsWith('\n'));
    const second = await leaveVoicemail(root, ref, { origtime: 1795000000 });
    assert.notEqual(second.msgId, left.msgId, 'the counter makes ids unique within a second');
  });

  it('formats origdate like strftime %a %b %e %r UTC %Y', () => {
    assert.equal(formatOrigdate(1795347150), 'Sun Nov 22 11:32:30 AM UTC 2026');
    assert.equal(formatOrigdate(Date.UTC(2024, 0, 8, 0, 5, 9) / 1000), 'Mon Jan  8 12:05:09 AM UTC 2024');
    assert.equal(formatOrigdate(Date.UTC(2024, 1, 29, 12, 0, 0) / 1000), 'Thu Feb 29 12:00:00 PM UTC 2024');
    assert.equal(formatOrigdate(Date.UTC(2023, 5, 20, 15, 59, 44) / 1000), 'Tue Jun 20 03:59:44 PM UTC 2023');
  });

  it('variants: no msg_id (Asterisk < 11), macrocontext (Asterisk <= 20), Latin-1 bytes', async () => {
    const ref = freshBox();
    const old = await leaveVoicemail(root, ref, { msgId: null });
    assert.equal(old.msgId, '');
    assert.doesNotMatch(await readFile(old.txtPath, 'utf8'), /msg_id/);
    const macro = await leaveVoicemail(root, ref, { macrocontext: true });
    assert.match(await readFile(macro.txtPath, 'utf8'), /\ncontext=vm-leave\nmacrocontext=\nexten=/);
    const latin = await leaveVoicemail(root, ref, { callerid: '"Jos\u00e9" <5550001>', latin1: true });
    const bytes = await readFile(latin.txtPath);
    assert.ok(bytes.includes(Buffer.from([0x4a, 0x6f, 0x73, 0xe9, 0x22])), 'é is the single byte 0xE9');
    const listed = await listFolder(root, ref, 'INBOX');
    assert.deepEqual(listed.map((m) => m.msgId), ['', macro.msgId, latin.msgId]);
  });

  it("'rewritten' style looks like ast_config_text_file_save output and still lists its msg_id", async () => {
    const ref = freshBox();
    const left = await leaveVoicemail(root, ref, { style: 'rewritten', callerid: 'a;b', origtime: 1795347150 });
    const text = await readFile(left.txtPath, 'utf8');
    const lines = text.split('\n');
    assert.deepEqual(lines.slice(0, 4), [';!', ';! Automatically generated configuration file', `;! Filename: ${left.txtPath}`, ';! Generator: app_voicemail']);
    assert.match(lines[4]!, /^;! Creation Date: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
    assert.deepEqual(lines.slice(5, 10), [';!', '', '', '', '[message]']);
    assert.equal(lines[10], `origmailbox = ${ref.mailbox}`);
    assert.ok(lines.includes('callerid = a\\;b'), 'semicolons escaped');
    assert.ok(lines.includes('flag = '), 'empty values keep the space after =');
    assert.equal(lines.at(-2), `msg_id = ${left.msgId}`, 'msg_id was appended last');
    assert.equal((await listFolder(root, ref, 'INBOX'))[0]!.msgId, left.msgId);
  });

  it('renames audio in the order gsm, wav, WAV and the .txt last; leaves tmp/ empty; .txt is 0666', async () => {
    const ref = freshBox();
    const inbox = folderDir(root, ref, 'INBOX');
    await mkdir(inbox, { recursive: true });
    const events: string[] = [];
    // 'rename' = a name appeared or vanished; the chmod of the .txt shows up as 'change'.
    const watcher = watch(inbox, (event, name) => {
      if (event === 'rename' && name && name.startsWith('msg')) events.push(String(name));
    });
    try {
      await leaveVoicemail(root, ref, { formats: ['wav49', 'gsm', 'wav'] });
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      watcher.close();
    }
    assert.deepEqual(events, ['msg0000.gsm', 'msg0000.wav', 'msg0000.WAV', 'msg0000.txt']);
    assert.deepEqual(await readdir(join(mailboxDir(root, ref), 'tmp')), []);
    assert.equal((await stat(join(inbox, 'msg0000.txt'))).mode & 0o777, 0o666);
    assert.deepEqual((await readdir(inbox)).sort(), ['msg0000.WAV', 'msg0000.gsm', 'msg0000.txt', 'msg0000.wav']);
  });

  it('stages everything in tmp/ (txt without extension, complete) before the locked folder gets anything', async () => {
    const ref = freshBox();
    // Urgent: the counting lock on INBOX is free, only the final lock (on Urgent) is blocked.
    const urgent = folderDir(root, ref, 'Urgent');
    const tmp = join(mailboxDir(root, ref), 'tmp');
    const held = await holdLock(urgent, 10_000);
    const leaving = leaveVoicemail(root, ref, { duration: 7, urgent: true });
    let staged: string[] = [];
    for (let i = 0; i < 300 && staged.length < 4; i++) {
      await new Promise((r) => setTimeout(r, 20));
      staged = (await readdir(tmp).catch(() => [])).sort();
    }
    assert.equal(staged.length, 4, `tmp/ holds ${staged.join(' ')}`);
    const stem = staged.find((n) => !n.includes('.'))!;
    assert.match(stem, /^[A-Za-z0-9]{6}$/);
    assert.deepEqual(staged, [stem, `${stem}.WAV`, `${stem}.gsm`, `${stem}.wav`].sort());
    await waitUntil(async () => (await readFile(join(tmp, stem), 'utf8')).includes('duration=7\n'));
    assert.deepEqual((await readdir(urgent)).filter((n) => n.startsWith('msg')), [], 'nothing in Urgent while locked');
    await held.release();
    const left = await leaving;
    assert.equal(left.msgnum, 0);
    assert.deepEqual(await readdir(tmp), []);
  });
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('asterisk spool stand-in: numbering', () => {
  it('numbers from 0, takes max+1 and never reuses a gap', async () => {
    const ref = freshBox();
    const nums = [];
    for (let i = 0; i < 3; i++) nums.push((await leaveVoicemail(root, ref)).msgnum);
    assert.deepEqual(nums, [0, 1, 2]);
    // Someone removes msg0001 behind Asterisk's back: the gap stays, the next one is 3.
    const inbox = folderDir(root, ref, 'INBOX');
    for (const ext of ['txt', 'gsm', 'wav', 'WAV']) await unlink(join(inbox, `msg0001.${ext}`));
    assert.equal((await leaveVoicemail(root, ref)).msgnum, 3);
    assert.deepEqual((await listFolder(root, ref, 'INBOX')).map((m) => m.msgnum), [0, 2, 3]);
  });

  it('audio without a .txt is not a message, and does not count for numbering', async () => {
    const ref = freshBox();
    const inbox = folderDir(root, ref, 'INBOX');
    await mkdir(inbox, { recursive: true });
    await writeFile(join(inbox, 'msg0005.wav'), 'x');
    assert.equal(await lastMessageIndex(inbox), -1);
    assert.equal((await leaveVoicemail(root, ref)).msgnum, 0);
  });

  it('moving copies to max+1 of the target (same bytes, same msg_id) and renumbers the source', async () => {
    const ref = freshBox();
    const a = await leaveVoicemail(root, ref, { callerid: 'A' });
    const b = await leaveVoicemail(root, ref, { callerid: 'B' });
    const c = await leaveVoicemail(root, ref, { callerid: 'C' });
    const aBytes = await readFile(a.txtPath);

    const moved = await moveMessage(root, ref, 'INBOX', 0, 'Old');
    assert.deepEqual(moved, { folder: 'Old', msgnum: 0 });
    assert.deepEqual(await readFile(join(folderDir(root, ref, 'Old'), 'msg0000.txt')), aBytes);
    const inbox = await listFolder(root, ref, 'INBOX');
    assert.deepEqual(inbox.map((m) => [m.msgnum, m.msgId]), [[0, b.msgId], [1, c.msgId]]);
    assert.deepEqual(inbox[1]!.files, ['msg0001.WAV', 'msg0001.gsm', 'msg0001.txt', 'msg0001.wav']);

    assert.deepEqual(await hearMessage(root, ref, 1), { folder: 'Old', msgnum: 1 });
    assert.deepEqual(await saveToFolder(root, ref, 'INBOX', 0, 'Work'), { folder: 'Work', msgnum: 0 });
    assert.deepEqual(await listFolder(root, ref, 'INBOX'), []);
    assert.deepEqual((await listFolder(root, ref, 'Old')).map((m) => m.msgId), [a.msgId, c.msgId]);
    assert.deepEqual((await listFolder(root, ref, 'Work')).map((m) => m.msgId), [b.msgId]);
    const oldFiles = (await readdir(folderDir(root, ref, 'Old'))).sort();
    assert.deepEqual(oldFiles, ['msg0000.WAV', 'msg0000.gsm', 'msg0000.txt', 'msg0000.wav', 'msg0001.WAV', 'msg0001.gsm', 'msg0001.txt', 'msg0001.wav']);
  });

  it('an urgent message heard on the phone goes from Urgent to Old', async () => {
    const ref = freshBox();
    const u = await leaveVoicemail(root, ref, { urgent: true });
    await hearMessage(root, ref, u.msgnum, 'Urgent');
    assert.deepEqual(await listFolder(root, ref, 'Urgent'), []);
    assert.deepEqual((await listFolder(root, ref, 'Old')).map((m) => m.msgId), [u.msgId]);
  });

  it('deleting removes the .txt first, then the audio, and closes the gap', async () => {
    const ref = freshBox();
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push((await leaveVoicemail(root, ref)).msgId);
    const inbox = folderDir(root, ref, 'INBOX');
    const events: string[] = [];
    const watcher = watch(inbox, (event, name) => {
      if (event === 'rename' && name && name.startsWith('msg0001')) events.push(String(name));
    });
    try {
      await deleteMessage(root, ref, 'INBOX', 1);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      watcher.close();
    }
    // The .txt goes first; msg0002 then takes slot 1 (its files arrive audio first, .txt last).
    assert.deepEqual(events.slice(0, 4), ['msg0001.txt', 'msg0001.gsm', 'msg0001.wav', 'msg0001.WAV']);
    assert.deepEqual(events.slice(4), ['msg0001.gsm', 'msg0001.wav', 'msg0001.WAV', 'msg0001.txt']);
    assert.deepEqual((await listFolder(root, ref, 'INBOX')).map((m) => [m.msgnum, m.msgId]), [[0, ids[0]], [1, ids[2]], [2, ids[3]]]);
  });

  it('moving or deleting a message that does not exist fails and changes nothing', async () => {
    const ref = freshBox();
    await leaveVoicemail(root, ref);
    await assert.rejects(moveMessage(root, ref, 'INBOX', 5, 'Old'), /no message msg0005/);
    await assert.rejects(deleteMessage(root, ref, 'INBOX', 5), /no message msg0005/);
    await assert.rejects(moveMessage(root, ref, 'INBOX', 0, 'INBOX'), /itself/);
    assert.equal((await listFolder(root, ref, 'INBOX')).length, 1);
    assert.deepEqual((await readdir(folderDir(root, ref, 'INBOX'))).filter((n) => n.startsWith('.lock')), [], 'no lock left behind');
  });
});

describe('asterisk spool stand-in: locking', () => {
  it('uses the .lock-XXXXXXXX → link → .lock protocol; the temp name is gone while held', async () => {
    const dir = join(root, 'lockproto');
    await mkdir(dir, { recursive: true });
    const seen: string[] = [];
    const watcher = watch(dir, (_e, name) => {
      if (name) seen.push(String(name));
    });
    let during: string[] = [];
    try {
      await withFolderLock(dir, async () => {
        during = await readdir(dir);
        assert.equal((await stat(join(dir, '.lock'))).size, 0, 'Asterisk lock files are empty');
      });
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      watcher.close();
    }
    assert.deepEqual(during, ['.lock']);
    assert.deepEqual(await readdir(dir), []);
    assert.match(seen[0]!, /^\.lock-[0-9a-f]{8}$/);
    assert.ok(seen.includes('.lock'));
  });

  it('a second leaveVoicemail waits for a held lock, then gets the next number', async () => {
    const ref = freshBox();
    await leaveVoicemail(root, ref);
    const held = await holdLock(folderDir(root, ref, 'INBOX'), 700);
    const t0 = Date.now();
    const left = await leaveVoicemail(root, ref);
    const waited = Date.now() - t0;
    await held.released;
    assert.ok(waited >= 600, `waited ${waited} ms`);
    assert.equal(left.msgnum, 1);
  });

  it('two writers at once serialize on the lock and never share a number', async () => {
    const ref = freshBox();
    const left = await Promise.all(Array.from({ length: 8 }, () => leaveVoicemail(root, ref)));
    assert.deepEqual(left.map((l) => l.msgnum).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal((await listFolder(root, ref, 'INBOX')).length, 8);
  });

  it('when the lock stays held past the timeout the voicemail is lost and the recording deleted', async () => {
    const ref = freshBox();
    const inbox = folderDir(root, ref, 'INBOX');
    const held = await holdLock(inbox, 5_000);
    try {
      await assert.rejects(leaveVoicemail(root, ref, { lockTimeoutMs: 150 }), (err: unknown) => err instanceof LockTimeoutError && err.path === inbox);
      assert.deepEqual(await readdir(join(mailboxDir(root, ref), 'tmp')), []);
      assert.deepEqual((await readdir(inbox)).sort(), ['.lock'], 'the holder keeps its lock; no message');
    } finally {
      await held.release();
    }
    await assert.rejects(lockFolder(join(root, 'no-such-dir')), { code: 'ENOENT' });
  });

  it('moves wait for the destination lock too (nested inside the source lock)', async () => {
    const ref = freshBox();
    await leaveVoicemail(root, ref);
    const held = await holdLock(folderDir(root, ref, 'Old'), 400);
    const t0 = Date.now();
    await hearMessage(root, ref, 0);
    assert.ok(Date.now() - t0 >= 300);
    await held.released;
    assert.equal((await listFolder(root, ref, 'Old')).length, 1);
  });
});

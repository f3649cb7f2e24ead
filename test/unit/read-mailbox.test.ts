import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, cp, mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { exited, firstLine } from '../support/child.js';
import { SpoolError, UnsafeNameError } from '../../src/errors.js';
import { listSpoolMailboxes } from '../../src/spool/list-mailboxes.js';
import { readMailbox } from '../../src/spool/read-mailbox.js';
import type { MailboxRef, SpoolSnapshot } from '../../src/spool/types.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/asterisk/', import.meta.url));
const FIX_INBOX = join(FIXTURES, 'spool/voicemail/default/1000/INBOX');
const FIX_URGENT_TXT = join(FIXTURES, 'spool-with-urgent/voicemail/default/1000/Urgent/msg0000.txt');
const FIX_OLD_1001_TXT = join(FIXTURES, 'spool-final/voicemail/default/1001/Old/msg0000.txt');

const BOX: MailboxRef = { context: 'default', mailbox: '1000' };

let root: string;
let counter = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'vmb-read-mailbox-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh spool holding the fixture mailbox default/1000 (INBOX/msg0000 with WAV, gsm and wav). */
async function freshSpool(): Promise<{ spool: string; box: string }> {
  const spool = join(root, `spool-${++counter}`);
  await cp(join(FIXTURES, 'spool'), spool, { recursive: true });
  return { spool, box: join(spool, 'voicemail/default/1000') };
}

async function put(path: string, content: string | Buffer): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, content);
}

function summary(snap: SpoolSnapshot): string[] {
  return snap.messages.map((m) => `${m.folder}/${m.msgnum}:${m.audio.map((a) => a.ext).join(',')}`);
}

describe('readMailbox', () => {
  it('reads the real Asterisk mailbox: envelope, identity and every audio format, case kept', async () => {
    const { spool, box } = await freshSpool();
    const snap = await readMailbox(spool, BOX);
    assert.deepEqual(snap.ref, BOX);
    assert.deepEqual(snap.problems, []);
    assert.equal(snap.messages.length, 1);
    const m = snap.messages[0]!;
    assert.equal(m.id, '1795347150-00000001');
    assert.equal(m.derivedId, false);
    assert.equal(m.folder, 'INBOX');
    assert.equal(m.msgnum, 0);
    assert.equal(m.txtPath, join(box, 'INBOX/msg0000.txt'));
    assert.deepEqual(m.audio, [
      { ext: 'WAV', path: join(box, 'INBOX/msg0000.WAV') },
      { ext: 'gsm', path: join(box, 'INBOX/msg0000.gsm') },
      { ext: 'wav', path: join(box, 'INBOX/msg0000.wav') },
    ]);
    assert.equal(m.envelope.callerid, '"Test Caller" <5551234>');
    assert.equal(m.envelope.duration, 6);
  });

  it('reads every synced folder, sorted by folder then number, and reports what is not a message', async () => {
    const { spool, box } = await freshSpool();
    const gsm = join(FIX_INBOX, 'msg0000.gsm');
    // Urgent: the real urgent envelope with audio.
    await put(join(box, 'Urgent/msg0000.txt'), await readFile(FIX_URGENT_TXT));
    await copyFile(gsm, join(box, 'Urgent/msg0000.gsm'));
    // Old: two messages out of order on disk, numbers 10 and 2; 3 has no audio yet; 4 is audio still arriving.
    await put(join(box, 'Old/msg0010.txt'), await readFile(FIX_OLD_1001_TXT));
    await copyFile(gsm, join(box, 'Old/msg0010.gsm'));
    await put(join(box, 'Old/msg0002.txt'), envelopeText({ origtime: 1700000000, msgId: '1700000000-00000002' }));
    await put(join(box, 'Old/msg0002.WAV'), Buffer.alloc(32));
    await put(join(box, 'Old/msg0003.txt'), envelopeText({ origtime: 1700000001 }));
    await put(join(box, 'Old/msg0004.wav'), Buffer.alloc(32));
    // Work: not an envelope; Family: binary; both with audio so they are messages to read.
    await put(join(box, 'Work/msg0000.txt'), 'this is not an envelope\n');
    await put(join(box, 'Work/msg0000.wav'), Buffer.alloc(100));
    await put(join(box, 'Family/msg0000.txt'), Buffer.from([0, 1, 2, 3, 255, 254, 0, 0, 10]));
    await put(join(box, 'Family/msg0000.wav'), Buffer.alloc(100));
    // Asterisk's working files and names that are not messages.
    for (const f of ['.lock', '.lock-0a1b2c3d', 'lock', 'msg000.txt', 'msg10000.txt', 'msg0000.txt.swp', 'msg0000.wav~', 'Msg0001.txt']) {
      await put(join(box, 'INBOX', f), '');
    }
    await put(join(box, 'tmp/TatkU8'), envelopeText({ origtime: 1 }));
    await put(join(box, 'tmp/TatkU8.wav'), Buffer.alloc(8));
    await put(join(box, 'unavail.wav'), Buffer.alloc(8));
    // Folders vmbridge does not sync.
    for (const folder of ['Cust1', 'Deleted', 'inbox']) {
      await put(join(box, folder, 'msg0000.txt'), envelopeText({ origtime: 2 }));
      await put(join(box, folder, 'msg0000.wav'), Buffer.alloc(8));
    }

    const snap = await readMailbox(spool, BOX);
    // The damaged envelopes in Work and Family are still messages: Asterisk counts them on the lamp.
    assert.deepEqual(summary(snap), ['INBOX/0:WAV,gsm,wav', 'Urgent/0:gsm', 'Old/2:WAV', 'Old/10:gsm', 'Work/0:wav', 'Family/0:wav']);
    assert.equal(snap.messages[1]!.envelope.flag, 'Urgent');
    assert.equal(snap.messages[1]!.id, '1795347257-00000003');
    assert.equal(snap.messages[3]!.id, '1795347133-00000000');
    assert.deepEqual(snap.messages[3]!.audio.map((a) => a.ext), ['gsm']);

    assert.deepEqual(snap.problems.map((p) => p.path), [join(box, 'Old/msg0003.txt')]);
    assert.match(snap.problems[0]!.problem, /no audio/);
    assert.deepEqual(snap.warnings?.map((p) => p.path), [join(box, 'Family/msg0000.txt'), join(box, 'Work/msg0000.txt')]);
    const warning = (rel: string): string => snap.warnings?.find((p) => p.path === join(box, rel))?.problem ?? '';
    assert.match(warning('Family/msg0000.txt'), /binary/);
    assert.match(warning('Work/msg0000.txt'), /line 1: .*this is not an envelope/);
    assert.match(warning('Work/msg0000.txt'), /no origtime; the file's time is used/);
    assert.ok(!warning('Work/msg0000.txt').startsWith(box), 'the path is in `path`, not repeated in `problem`');
    const work = snap.messages.find((m) => m.folder === 'Work')!;
    const mtime = Math.floor((await stat(join(box, 'Work/msg0000.txt'))).mtimeMs / 1000);
    assert.equal(work.envelope.origtime, mtime, 'dated by the file');
    assert.notEqual(work.id, snap.messages.find((m) => m.folder === 'Family')!.id, 'two damaged files are two messages');
  });

  it('a message without msg_id gets a stable derived id, shared by its copy in another folder', async () => {
    const { spool, box } = await freshSpool();
    const text = envelopeText({ origtime: 1600000000, callerid: '"Old PBX" <100>' });
    await put(join(box, 'Old/msg0000.txt'), text);
    await put(join(box, 'Old/msg0000.gsm'), Buffer.alloc(8));
    await put(join(box, 'Work/msg0000.txt'), text);
    await put(join(box, 'Work/msg0000.gsm'), Buffer.alloc(8));
    const first = await readMailbox(spool, BOX);
    const again = await readMailbox(spool, BOX);
    const old = first.messages.find((m) => m.folder === 'Old')!;
    const work = first.messages.find((m) => m.folder === 'Work')!;
    assert.equal(old.derivedId, true);
    assert.match(old.id, /^d-[0-9a-f]{24}$/);
    assert.equal(work.id, old.id);
    assert.deepEqual(again.messages.map((m) => m.id), first.messages.map((m) => m.id));
  });

  it('a missing mailbox directory or folder is simply empty', async () => {
    const { spool } = await freshSpool();
    assert.deepEqual(await readMailbox(spool, { context: 'default', mailbox: '1999' }), { ref: { context: 'default', mailbox: '1999' }, messages: [], problems: [], warnings: [], settled: true });
  });

  it('a spool without voicemail/ is an error (wrong path or missing mount), not empty mailboxes', async () => {
    const spool = join(root, `empty-spool-${++counter}`);
    await mkdir(spool);
    await assert.rejects(readMailbox(spool, BOX), (err: unknown) => err instanceof SpoolError && err.path === join(spool, 'voicemail') && /not mounted/.test(err.message));
    await assert.rejects(readMailbox(join(root, 'no-such-spool'), BOX), SpoolError);
  });

  it('never follows symlinks: a symlinked folder, .txt or audio file is skipped with a problem', async () => {
    const { spool, box } = await freshSpool();
    // Outside the mailbox: a complete message that must never be read through the links below.
    const outside = join(root, `outside-${counter}`);
    await put(join(outside, 'msg0000.txt'), envelopeText({ origtime: 42, msgId: '42-00000000' }));
    await put(join(outside, 'msg0000.wav'), Buffer.alloc(8));
    await symlink(outside, join(box, 'Work'));
    await mkdir(join(box, 'Family'));
    await symlink(join(outside, 'msg0000.txt'), join(box, 'Family/msg0000.txt'));
    await put(join(box, 'Family/msg0000.wav'), Buffer.alloc(8));
    await put(join(box, 'Friends/msg0000.txt'), envelopeText({ origtime: 43 }));
    await symlink(join(outside, 'msg0000.wav'), join(box, 'Friends/msg0000.wav'));
    await put(join(box, 'Friends/msg0001.txt'), envelopeText({ origtime: 44 }));
    await symlink(join(outside, 'msg0000.wav'), join(box, 'Friends/msg0001.wav'));
    await put(join(box, 'Friends/msg0001.gsm'), Buffer.alloc(16));

    const snap = await readMailbox(spool, BOX);
    assert.deepEqual(summary(snap), ['INBOX/0:WAV,gsm,wav', 'Friends/1:gsm']);
    assert.ok(!snap.messages.some((m) => m.id === '42-00000000'));
    const got = snap.problems.map((p) => [p.path.slice(box.length + 1), p.problem] as const);
    assert.deepEqual(got.map(([p]) => p), ['Family/msg0000.txt', 'Friends/msg0000.txt', 'Friends/msg0000.wav', 'Friends/msg0001.wav', 'Work']);
    for (const [path, problem] of got) {
      if (path === 'Friends/msg0000.txt') assert.match(problem, /no audio/);
      else assert.match(problem, /symbolic link; not followed/, path);
    }
  });

  it('a symlinked mailbox or context folder is an error naming it, never read (unknown, not empty)', async () => {
    const { spool, box } = await freshSpool();
    const outside = join(root, `outside-box-${counter}`);
    await put(join(outside, 'INBOX/msg0000.txt'), envelopeText({ origtime: 42, msgId: '42-00000001' }));
    await put(join(outside, 'INBOX/msg0000.wav'), Buffer.alloc(8));
    const linked = { context: BOX.context, mailbox: '9911' };
    await symlink(outside, join(box, '..', linked.mailbox));
    await assert.rejects(readMailbox(spool, linked), (err: unknown) => err instanceof SpoolError && err.path === join(box, '..', linked.mailbox) && /symbolic link; not followed/.test(err.message));
    await symlink(join(box, '..'), join(spool, 'voicemail', 'linkedctx'));
    await assert.rejects(readMailbox(spool, { context: 'linkedctx', mailbox: BOX.mailbox }), (err: unknown) => err instanceof SpoolError && err.path === join(spool, 'voicemail', 'linkedctx') && /symbolic link/.test(err.message));
    await assert.doesNotReject(readMailbox(spool, BOX), 'the real mailbox still reads');
  });

  it('an audio sibling that is a directory is not audio', async () => {
    const { spool, box } = await freshSpool();
    await mkdir(join(box, 'INBOX/msg0000.ulaw'));
    const snap = await readMailbox(spool, BOX);
    assert.deepEqual(summary(snap), ['INBOX/0:WAV,gsm,wav']);
    assert.deepEqual(snap.problems.map((p) => p.path), [join(box, 'INBOX/msg0000.ulaw')]);
  });

  it('refuses unsafe names before touching the disk', async () => {
    for (const ref of [
      { context: '..', mailbox: '1000' },
      { context: 'default', mailbox: '..' },
      { context: 'default', mailbox: 'a/b' },
      { context: 'default', mailbox: '' },
      { context: 'default', mailbox: '1000\u0000' },
    ]) {
      await assert.rejects(readMailbox(root, ref), UnsafeNameError, JSON.stringify(ref));
    }
  });

  it('a mailbox path that cannot be listed is an error, not an empty mailbox', async () => {
    const spool = join(root, `spool-${++counter}`);
    await put(join(spool, 'voicemail/default/1000'), 'a file where the mailbox directory should be');
    await assert.rejects(readMailbox(spool, BOX), (err: unknown) => err instanceof SpoolError && err.path === join(spool, 'voicemail/default/1000'));
  });
});

describe('readMailbox envelope cache', () => {
  it('reads a rewritten .txt again (new content, same name) and follows a renumbering rename', async () => {
    const { spool, box } = await freshSpool();
    const first = await readMailbox(spool, BOX);
    const txt = join(box, 'INBOX/msg0000.txt');
    const before = first.messages.find((m) => m.txtPath === txt)!;
    // Asterisk rewrites the file in place (e.g. adding a msg_id): new bytes, new size and mtime.
    const text = (await readFile(txt, 'latin1')).replace(/^duration=.*$/m, 'duration=4242');
    await writeFile(txt, text, 'latin1');
    const second = await readMailbox(spool, BOX);
    assert.equal(second.messages.find((m) => m.txtPath === txt)!.envelope.duration, 4242);
    assert.notEqual(before.envelope.duration, 4242);
  });
});

describe('listSpoolMailboxes', () => {
  it('lists <context>/<mailbox> directories, sorted, and reports unsafe names and symlinks', async () => {
    const spool = join(root, `list-${++counter}`);
    const vm = join(spool, 'voicemail');
    for (const d of ['default/1000/INBOX', 'default/1001', 'other/2000', 'default/bad name', 'bad ctx/3000', 'default/.hidden.ok']) {
      await mkdir(join(vm, d), { recursive: true });
    }
    await writeFile(join(vm, 'default/notes.txt'), '');
    await writeFile(join(vm, 'stray-file'), '');
    await symlink(join(vm, 'other/2000'), join(vm, 'default/1002'));

    const { refs, problems } = await listSpoolMailboxes(spool);
    assert.deepEqual(refs, [
      { context: 'default', mailbox: '.hidden.ok' },
      { context: 'default', mailbox: '1000' },
      { context: 'default', mailbox: '1001' },
      { context: 'other', mailbox: '2000' },
    ]);
    assert.deepEqual(problems.map((p) => p.path).sort(), [join(vm, 'bad ctx'), join(vm, 'default/1002'), join(vm, 'default/bad name')].sort());
    assert.match(problems.find((p) => p.path === join(vm, 'default/1002'))!.problem, /symbolic link/);
    assert.match(problems.find((p) => p.path === join(vm, 'bad ctx'))!.problem, /not a safe spool name/);
  });

  it('a spool without voicemail/ has no mailboxes, and says so', async () => {
    const { refs, problems } = await listSpoolMailboxes(join(root, 'nothing-here'));
    assert.deepEqual(refs, []);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.problem, /does not exist/);
  });
});

function envelopeText(o: { origtime: number; msgId?: string; callerid?: string }): string {
  return [
    ';',
    '; Message Information file',
    ';',
    '[message]',
    'origmailbox=1000',
    'context=from-internal',
    'exten=1000',
    'rdnis=unknown',
    'priority=2',
    'callerchan=PJSIP/100-00000001',
    `callerid=${o.callerid ?? '"Test" <100>'}`,
    'origdate=Tue Nov 14 10:13:20 PM UTC 2023',
    `origtime=${o.origtime}`,
    'category=',
    ...(o.msgId !== undefined ? [`msg_id=${o.msgId}`] : []),
    'flag=',
    'duration=3',
    '',
  ].join('\n');
}

describe('readMailbox consistency', () => {
  it('reads again while a message is half made, and takes a half-made message that stays as the folder state', async () => {
    const { spool, box } = await freshSpool();
    const inbox = join(box, 'INBOX');
    // Audio without its .txt: what a folder shows between the renames of a renumbering.
    await copyFile(join(inbox, 'msg0000.wav'), join(inbox, 'msg0003.wav'));
    const early = await readMailbox(spool, BOX, { attempts: 2 });
    assert.equal(early.settled, false, 'two quick reads are not enough to call it the real state');
    const later = await readMailbox(spool, BOX);
    assert.equal(later.settled, true, 'after a quiet spell it is the real state');
    assert.deepEqual(later.messages.map((m) => m.msgnum), [0], 'the whole message is still read; the leftover audio is not a message');
  });

  it('reports settled: false while files keep moving, and settled: true once they stop', async () => {
    const { spool, box } = await freshSpool();
    assert.equal((await readMailbox(spool, BOX)).settled, true);
    // Another process (as Asterisk is) renames audio back and forth without pause, as a
    // renumbering does. It says when it has started, and stops when told to.
    const inbox = join(box, 'INBOX');
    await copyFile(join(inbox, 'msg0000.wav'), join(inbox, 'msg0007.wav'));
    const churner = spawn(process.execPath, ['-e', `
      const { renameSync } = require('node:fs');
      const a = ${JSON.stringify(join(inbox, 'msg0007.wav'))}, b = ${JSON.stringify(join(inbox, 'msg0008.wav'))};
      let stop = false;
      process.stdin.on('data', () => { stop = true; });
      let n = 0;
      const spin = () => {
        for (let i = 0; i < 200; i++, n++) n % 2 === 0 ? renameSync(a, b) : renameSync(b, a);
        if (n === 200) process.stdout.write('moving\\n');
        if (stop) process.exit(0);
        setImmediate(spin);
      };
      spin();
    `], { stdio: ['pipe', 'pipe', 'pipe'] });
    await firstLine(churner);
    const busy = await readMailbox(spool, BOX);
    churner.stdin!.end('stop\n');
    await exited(churner);
    assert.equal(busy.settled, false);
    await rm(join(inbox, 'msg0007.wav'), { force: true });
    const still = await readMailbox(spool, BOX);
    assert.equal(still.settled, true);
    assert.deepEqual(still.messages.map((m) => m.msgnum), [0]);
  });
});

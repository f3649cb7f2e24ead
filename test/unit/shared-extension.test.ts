/**
 * imapvmshareid=: which X-Asterisk-VM-Extension a mailbox's emails carry, which mailboxes share one,
 * and which Asterisk-written email each of them takes (never one taken twice, nothing dropped that a
 * mailbox already had).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { settingsSchema } from '../../src/config/schema.js';
import { readVoicemailConf } from '../../src/config/voicemail-conf.js';
import { buildVoicemailEmail } from '../../src/imap/voicemail-email.js';
import { buildDirectory } from '../../src/sync/directory.js';
import type { ImapSide } from '../../src/sync/plan.js';
import { sharedVerdict, type SharedFacts } from '../../src/sync/shared-extension.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-share-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function directoryOf(mailboxes: string): Promise<ReturnType<typeof buildDirectory>> {
  const file = join(dir, `voicemail-${Math.random().toString(16).slice(2)}.conf`);
  await writeFile(file, `[general]\n\n[default]\n${mailboxes}\n[other]\n3000 => 1,Other,,,imapuser=shared|imappassword=p|imapvmshareid=6000\n`);
  const settings = settingsSchema.parse({ imap: { host: 'mail.example.org' }, spool: { voicemailConf: file } });
  return buildDirectory(await readVoicemailConf(file), settings, new Map());
}

describe('imapvmshareid in voicemail.conf', () => {
  it('is the mailbox\'s Asterisk extension; mailboxes of one context and account with one extension are siblings', async () => {
    const d = await directoryOf([
      '1000 => 1,Alice,,,imapuser=shared|imappassword=p|imapvmshareid=6000',
      '1001 => 1,Bob,,,imapuser=shared|imappassword=p|imapvmshareid=6000',
      // Asterisk's search for 6000 finds the same emails: a sibling though it has no share id.
      '6000 => 1,Group,,,imapuser=shared|imappassword=p',
      // Same share id, another account: another folder, so not shared.
      '1002 => 1,Carol,,,imapuser=carol|imappassword=p|imapvmshareid=6000',
      '1003 => 1,Dave,,,imapuser=dave|imappassword=p|imapvmshareid=',
      '1004 => 1,Eve,,,imapuser=eve|imappassword=p|imapvmshareid=60 00',
    ].join('\n'));
    const box = (k: string) => d.boxes.get(k);
    assert.equal(box('1000@default')?.asteriskExtension, '6000');
    assert.deepEqual(box('1000@default')?.shareSiblings?.map((r) => r.mailbox).sort(), ['1001', '6000']);
    assert.deepEqual(box('6000@default')?.shareSiblings?.map((r) => r.mailbox).sort(), ['1000', '1001']);
    assert.equal(box('6000@default')?.asteriskExtension, '6000');
    assert.equal(box('1002@default')?.shareSiblings, undefined, 'another IMAP account');
    assert.equal(box('3000@other')?.shareSiblings, undefined, 'another context');
    assert.equal(box('1003@default')?.asteriskExtension, '1003', 'empty: the mailbox number, as Asterisk');
    assert.equal(box('1004@default'), undefined, 'a share id that cannot go into a header keeps the mailbox out');
    const problem = d.problems.find((p) => p.mailbox === '1004@default');
    assert.match(problem!.problem, /imapvmshareid="60 00" of mailbox 1004 in \[default\]/);
    assert.equal(problem!.line, 9);
  });

  it('[general] imapvmshareid is not a mailbox\'s (Asterisk reads it per mailbox only)', async () => {
    const file = join(dir, 'general.conf');
    await writeFile(file, '[general]\nimapvmshareid=6000\n\n[default]\n1000 => 1,Alice,,,imapuser=a|imappassword=p\n');
    const settings = settingsSchema.parse({ imap: { host: 'mail.example.org' }, spool: { voicemailConf: file } });
    assert.equal(buildDirectory(await readVoicemailConf(file), settings, new Map()).boxes.get('1000@default')?.asteriskExtension, '1000');
  });

  it('an email of a mailbox with a share id carries it in X-Asterisk-VM-Extension; the Message-ID still names the mailbox', async () => {
    const inbox = new URL('../fixtures/asterisk/spool/voicemail/default/1000/INBOX/', import.meta.url);
    const raw = await buildVoicemailEmail({
      ref: { context: 'default', mailbox: '1000' },
      message: {
        id: '1795347150-00000001', derivedId: false, folder: 'INBOX', msgnum: 0, txtPath: new URL('msg0000.txt', inbox).pathname,
        audio: [{ ext: 'wav', path: new URL('msg0000.wav', inbox).pathname }],
        envelope: { callerid: '"Test Caller" <5551234>', origtime: 1795347150, msgId: '1795347150-00000001', duration: 6, raw: {} },
      },
      owner: { fullName: 'Alice', email: '' },
      timezone: 'UTC',
      from: '"Voicemail" <voicemail@example.org>',
      serverName: 'PBX',
      messageIdDomain: 'vmbridge.invalid',
      asteriskExtension: '6000',
      readAudio: (p) => readFile(p),
    });
    const parsed = await simpleParser(raw);
    assert.equal(parsed.headers.get('x-asterisk-vm-extension'), '6000');
    assert.equal(parsed.headers.get('x-asterisk-vm-context'), 'default');
    assert.equal(parsed.messageId, '<vm.1795347150-00000001.1000.default@vmbridge.invalid>');
  });
});

const at = (uid: number, role: ImapSide['role'] = 'inbox'): ImapSide => ({ role, uid, seen: false, flagged: false });
const facts = (over: Partial<SharedFacts>): SharedFacts => ({
  copies: [at(7)], self: '1000', claimedBy: undefined, record: undefined, ownCopies: 0, inOwnSpool: true, elsewhere: false, ...over,
});

describe('which email of Asterisk\'s storage a mailbox sharing its extension takes', () => {
  it('the one whose voicemail only its spool holds, and claims it', () => {
    assert.deepEqual(sharedVerdict(facts({})), { take: at(7), claim: true });
  });

  it('of two emails with one identity, one: the first by folder and UID', () => {
    assert.deepEqual(sharedVerdict(facts({ copies: [at(9, 'work'), at(8), at(7, 'work')] })), { take: at(8), claim: true });
  });

  it('none that another mailbox took, whatever its own spool and records say', () => {
    const v = sharedVerdict(facts({ claimedBy: '1001', record: { folder: 'INBOX', role: 'inbox', uid: 7, uidValidity: '1' } }));
    assert.equal(v.take, undefined);
    assert.match('why' in v ? v.why : '', /taken by mailbox 1001/);
  });

  it('none when the same message is in another sharing mailbox (VoiceMail(a&b), a forward), or that is not known yet', () => {
    assert.equal(sharedVerdict(facts({ elsewhere: true })).take, undefined);
    assert.equal(sharedVerdict(facts({ elsewhere: 'unknown' })).take, undefined);
    assert.equal(sharedVerdict(facts({ inOwnSpool: false })).take, undefined, 'not its voicemail');
  });

  it('the one it took stays its own: claimed, and from a record made before the share was known', () => {
    const record = { folder: 'INBOX' as const, role: 'inbox' as const, uid: 8, uidValidity: '1' };
    assert.deepEqual(sharedVerdict(facts({ claimedBy: '1000', elsewhere: true, inOwnSpool: false, copies: [at(7), at(8)], record })), { take: at(8), claim: false });
    assert.deepEqual(sharedVerdict(facts({ claimedBy: '1000', elsewhere: true, copies: [at(7)] })), { take: at(7), claim: false }, 'moved: found again by its headers');
    assert.deepEqual(sharedVerdict(facts({ record, copies: [at(8)], elsewhere: true })), { take: at(8), claim: true });
  });

  it('none beside an email of its own (it would be taken for a duplicate and removed)', () => {
    const record = { folder: 'INBOX' as const, role: 'inbox' as const, uid: 20, uidValidity: '1' };
    assert.equal(sharedVerdict(facts({ record })).take, undefined);
    assert.equal(sharedVerdict(facts({ ownCopies: 1 })).take, undefined);
    assert.equal(sharedVerdict(facts({ ownCopies: 1, claimedBy: '1000' })).take, undefined);
  });
});

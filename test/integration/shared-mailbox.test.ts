/**
 * Voicemail mixed into the user's own INBOX (the shared-account layout), on real Dovecot servers
 * with and without UIDPLUS (and MOVE): vmbridge imports, marks heard voicemail read, files one to
 * Work and deletes two, all from the phone side, while the user's own mail sits in the same
 * folders. Afterwards every one of the user's messages is still there, byte for byte and flag for
 * flag, counted from a listing of every folder before and after (UID, flags, SHA-256 of
 * BODY.PEEK[]). vmbridge talks to Dovecot through a relay that writes down each command it sends,
 * so "no bare EXPUNGE" is read off the wire, not inferred.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { ImapPool } from '../../src/imap/pool.js';
import { loadDirectory } from '../../src/service.js';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';
import { FileSpoolStore } from '../../src/store/file-spool.js';
import { reconcileMailbox } from '../../src/sync/reconcile.js';
import { StateStore } from '../../src/sync/state-store.js';
import { deleteMessage, hearMessage, leaveVoicemail, listFolder, moveMessage, type LeftVoicemail } from '../support/asterisk-spool.js';
import { startHarness, type Harness } from '../support/harness.js';
import { startImapTap, type ImapTap } from '../support/imap-tap.js';
import type { MailClient } from '../support/mail-client.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const REF: MailboxRef = { context: 'default', mailbox: '1000' };
const mid = (id: string, ref: MailboxRef = REF, domain = DOMAIN): string => identityMessageId(ref, id, domain);
const SETTLE_MS = 60_000;

interface Variant {
  readonly name: string;
  readonly omit: readonly string[];
  readonly deleteMode: 'auto' | 'expunge' | 'trash';
  /** Where an email deleted on the phone ends up. */
  readonly deleted: 'expunged' | 'trash' | 'flagged';
  /** How filing to Work leaves INBOX: moved (MOVE, or COPY + UID EXPUNGE) or copied and flagged. */
  readonly filing: 'moved' | 'copied-and-flagged';
  /** imap.folders.trash, when set. */
  readonly trash?: string;
}

const VARIANTS: readonly Variant[] = [
  { name: 'Dovecot with UIDPLUS, deleteMode auto (UID EXPUNGE)', omit: [], deleteMode: 'auto', deleted: 'expunged', filing: 'moved' },
  { name: 'Dovecot without UIDPLUS, deleteMode auto (UID MOVE to Trash)', omit: ['UIDPLUS'], deleteMode: 'auto', deleted: 'trash', filing: 'moved' },
  { name: 'Dovecot without UIDPLUS, deleteMode expunge (left flagged \\Deleted)', omit: ['UIDPLUS'], deleteMode: 'expunge', deleted: 'flagged', filing: 'moved' },
  { name: 'Dovecot without UIDPLUS and MOVE (COPY; left flagged \\Deleted)', omit: ['UIDPLUS', 'MOVE'], deleteMode: 'auto', deleted: 'flagged', filing: 'copied-and-flagged' },
  { name: 'Dovecot with UIDPLUS but no MOVE, deleteMode trash (COPY to Trash + UID EXPUNGE)', omit: ['MOVE'], deleteMode: 'trash', deleted: 'trash', filing: 'moved' },
  // A trash folder the server will not create (Dovecot's Maildir++ layout refuses '.' in a name): the
  // delete falls back to the flag, still without any EXPUNGE.
  { name: 'Dovecot without UIDPLUS, a trash folder that cannot be made (falls back to the flag)', omit: ['UIDPLUS'], deleteMode: 'auto', deleted: 'flagged', filing: 'moved', trash: 'Bin.old' },
];

// ---------------------------------------------------------------------------------------------
// The user's own mail

interface OwnMessage {
  readonly folder: string;
  readonly raw: string;
  readonly flags: readonly string[];
}

function email(messageId: string, subject: string, body: string, extraHeaders: readonly string[] = []): string {
  return [
    'From: "Alice Example" <alice@example.org>',
    'To: "Owner 1000" <u1000@example.invalid>',
    `Subject: ${subject}`,
    'Date: Mon, 02 Nov 2026 09:15:00 +0000',
    `Message-ID: ${messageId}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    ...extraHeaders,
    '',
    body,
    '',
  ].join('\r\n');
}

/**
 * What the user already has before vmbridge first runs: plain, read, flagged, deleted-but-not-yet-
 * expunged mail, and messages whose Message-ID looks like vmbridge's but is not this mailbox's.
 * `lookalike` is a voicemail the spool holds, whose identity the tricky ones imitate.
 */
function ownMail(lookalike: string): OwnMessage[] {
  return [
    { folder: 'INBOX', flags: [], raw: email('<plain-1@example.org>', 'Lunch on Friday?', 'Shall we?') },
    { folder: 'INBOX', flags: ['\\Seen'], raw: email('<read-1@example.org>', 'Minutes', 'Attached are the minutes.') },
    { folder: 'INBOX', flags: ['\\Flagged'], raw: email('<flagged-1@example.org>', 'Invoice 2026-11', 'Please pay by the 30th.') },
    { folder: 'INBOX', flags: ['\\Seen', '\\Flagged'], raw: email('<both-1@example.org>', 'Contract', 'Signed copy.') },
    { folder: 'INBOX', flags: ['\\Deleted'], raw: email('<deleted-1@example.org>', 'Newsletter', 'Deleted, not yet expunged.') },
    { folder: 'INBOX', flags: ['\\Deleted', '\\Seen'], raw: email('<deleted-2@example.org>', 'Spam', 'Read, then deleted.') },
    { folder: 'INBOX', flags: ['\\Answered', '\\Seen', '$Forwarded'], raw: email('<answered-1@example.org>', 'Re: Plans', 'Answered and forwarded.') },
    // vmbridge's pattern and domain, but another mailbox's voicemail.
    { folder: 'INBOX', flags: [], raw: email(mid(lookalike, { context: 'default', mailbox: '1099' }), 'Voicemail for 1099', 'Not this mailbox.') },
    // This mailbox and voicemail, but another domain.
    { folder: 'INBOX', flags: ['\\Seen'], raw: email(mid(lookalike, REF, 'other.example'), 'Voicemail via another system', 'Other domain.') },
    // Differs from vmbridge's Message-ID for a real voicemail only in case: SEARCH HEADER (which
    // ignores case) finds it whenever vmbridge looks for that voicemail.
    { folder: 'INBOX', flags: [], raw: email(mid(lookalike).replace('<vm.', '<VM.'), 'Almost a voicemail', 'Case differs.') },
    // Asterisk's own IMAP storage headers, with an ordinary Message-ID.
    {
      folder: 'INBOX',
      flags: ['\\Deleted'],
      raw: email('<asterisk-imap-1@pbx.example.org>', 'New message 1 in mailbox 1000', 'From Asterisk IMAP storage.', ['X-Asterisk-VM-Message-Num: 1', 'X-Asterisk-VM-Extension: 1000', 'X-Asterisk-VM-Context: default']),
    },
    { folder: 'Work', flags: [], raw: email('<work-1@example.org>', 'Quarterly plan', 'Draft 3.') },
    { folder: 'Work', flags: ['\\Seen'], raw: email('<work-2@example.org>', 'Budget', 'Numbers inside.') },
    { folder: 'Work', flags: ['\\Deleted'], raw: email('<work-3@example.org>', 'Old draft', 'Deleted in Work.') },
    { folder: 'Trash', flags: ['\\Seen'], raw: email('<trash-1@example.org>', 'Thrown away', 'In the trash.') },
    { folder: 'Trash', flags: ['\\Deleted', '\\Seen'], raw: email('<trash-2@example.org>', 'Really gone soon', 'Deleted in the trash.') },
  ];
}

// ---------------------------------------------------------------------------------------------
// Listing every message of every folder

interface Listed {
  readonly folder: string;
  readonly uid: number;
  /** Sorted; without \Recent, which belongs to a session, not to the message. */
  readonly flags: readonly string[];
  readonly sha256: string;
  readonly messageId: string;
}

async function listEverything(mc: MailClient): Promise<Listed[]> {
  const out: Listed[] = [];
  const folders = (await mc.client.list()).map((f) => f.path).sort();
  for (const folder of folders) {
    const lock = await mc.client.getMailboxLock(folder);
    try {
      await mc.client.noop();
      if (!mc.client.mailbox || mc.client.mailbox.exists === 0) continue;
      // source = BODY.PEEK[]: reading it sets no \Seen.
      for (const m of await mc.client.fetchAll('1:*', { uid: true, flags: true, source: true, envelope: true }, { uid: true })) {
        if (!m.source) throw new Error(`no source for UID ${m.uid} in ${folder}`);
        out.push({
          folder,
          uid: m.uid,
          flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort(),
          sha256: createHash('sha256').update(m.source).digest('hex'),
          messageId: m.envelope?.messageId ?? '',
        });
      }
    } finally {
      lock.release();
    }
  }
  return out.sort((a, b) => (a.folder === b.folder ? a.uid - b.uid : a.folder < b.folder ? -1 : 1));
}

// ---------------------------------------------------------------------------------------------

for (const variant of VARIANTS) {
  describe(`shared INBOX: ${variant.name}`, { timeout: 300_000 }, () => {
    let tap: ImapTap;
    let h: Harness;
    let mc: MailClient;

    before(async () => {
      tap = await startImapTap();
      h = await startHarness({
        boxes: [{ mailbox: REF.mailbox, fullName: 'Owner 1000' }],
        omitCapabilities: variant.omit,
        // vmbridge reaches Dovecot only through the tap; the user's client (h.mail) goes direct.
        settings: (base) => {
          const imap = base.imap as Record<string, unknown>;
          tap.upstreamPort = imap.port as number;
          return { ...base, imap: { ...imap, port: tap.port, deleteMode: variant.deleteMode, ...(variant.trash ? { folders: { trash: variant.trash } } : {}) } };
        },
      });
      mc = await h.mail(REF);
    });
    after(async () => {
      await h?.stop();
      await tap?.close();
    });

    it("imports, marks read, files and deletes voicemail; the user's own mail is untouched, byte for byte and flag for flag", async () => {
      // The phone side before vmbridge first runs: six voicemails, one urgent.
      const left: LeftVoicemail[] = [];
      for (let i = 1; i <= 6; i++) {
        left.push(await leaveVoicemail(h.spoolDir, REF, { callerid: `"Caller ${i}" <55500${i}>`, duration: 5 + i, origtime: 1_795_100_000 + i * 60, urgent: i === 6 }));
      }
      const [v1, v2, v3, v4, v5, v6] = left as [LeftVoicemail, LeftVoicemail, LeftVoicemail, LeftVoicemail, LeftVoicemail, LeftVoicemail];

      // The user's side before vmbridge first runs.
      await mc.client.mailboxCreate('Work');
      const own = ownMail(v3.msgId);
      for (const m of own) {
        const res = await mc.client.append(m.folder, Buffer.from(m.raw), [...m.flags]);
        assert.ok(res, `APPEND to ${m.folder}`);
      }
      const before = await listEverything(mc);
      assert.equal(before.length, own.length, 'every message of the user is listed');
      assert.equal(before.filter((m) => m.flags.includes('\\Deleted')).length, 5, "five of the user's messages are flagged \\Deleted");
      assert.deepEqual(new Set(before.map((m) => m.folder)), new Set(['INBOX', 'Work', 'Trash']));

      const voicemailIds = new Set<string>(left.map((v) => mid(v.msgId)));
      /** The copies of a voicemail's email that a mail client shows (not flagged \Deleted). */
      const live = async (id: string): Promise<Listed[]> =>
        (await listEverything(mc)).filter((m) => m.messageId === mid(id) && !m.flags.includes('\\Deleted'));
      const msgnum = async (id: string, folder: SpoolFolder): Promise<number> => {
        const found = (await listFolder(h.spoolDir, REF, folder)).find((m) => m.msgId === id);
        assert.ok(found, `${id} in ${folder}`);
        return found.msgnum;
      };

      // Import.
      const service = await h.startService();
      await waitFor('six voicemail emails in INBOX', async () => {
        const all = await listEverything(mc);
        return left.every((v) => all.some((m) => m.folder === 'INBOX' && m.messageId === mid(v.msgId) && !m.flags.includes('\\Deleted'))) || undefined;
      }, { timeoutMs: SETTLE_MS, intervalMs: 200 });
      for (const v of left) assert.equal((await live(v.msgId)).length, 1, `one email for ${v.msgId}, the look-alike notwithstanding`);
      const urgent = (await live(v6.msgId))[0]!;
      assert.deepEqual(urgent.flags, ['\\Flagged'], 'urgent: unseen and flagged');

      // Heard on the phone (moves to Old): \Seen.
      for (const v of [v1, v2]) {
        await hearMessage(h.spoolDir, REF, await msgnum(v.msgId, 'INBOX'));
        await waitFor(`${v.msgId} heard -> \\Seen`, async () => {
          const e = await live(v.msgId);
          return (e.length === 1 && e[0]!.folder === 'INBOX' && e[0]!.flags.includes('\\Seen')) || undefined;
        }, { timeoutMs: SETTLE_MS });
      }

      // Saved to Work on the phone: the email moves into the user's own Work folder.
      await moveMessage(h.spoolDir, REF, 'INBOX', await msgnum(v3.msgId, 'INBOX'), 'Work');
      await waitFor('filed to Work', async () => {
        const e = await live(v3.msgId);
        return (e.length === 1 && e[0]!.folder === 'Work') || undefined;
      }, { timeoutMs: SETTLE_MS });

      // Deleted on the phone: one never heard (INBOX), one heard (Old).
      await deleteMessage(h.spoolDir, REF, 'INBOX', await msgnum(v4.msgId, 'INBOX'));
      await deleteMessage(h.spoolDir, REF, 'Old', await msgnum(v2.msgId, 'Old'));
      for (const v of [v4, v2]) {
        await waitFor(`${v.msgId} deleted -> email gone from INBOX`, async () => !(await live(v.msgId)).some((m) => m.folder === 'INBOX') || undefined, { timeoutMs: SETTLE_MS });
      }

      // And a new one while it runs.
      const v7 = await leaveVoicemail(h.spoolDir, REF, { callerid: '"Late" <5550099>', duration: 12 });
      voicemailIds.add(mid(v7.msgId));
      await waitFor('the late voicemail', async () => (await live(v7.msgId)).length === 1 || undefined, { timeoutMs: SETTLE_MS });

      await service.close();

      // Nothing is left to do: a fresh dry run plans nothing.
      const redis = new Redis(h.redisUrl);
      const pool = new ImapPool(h.settings.imap, h.log);
      try {
        const box = (await loadDirectory(h.settings, h.log)).boxes.get('1000@default')!;
        const result = await reconcileMailbox({ store: new FileSpoolStore({ spoolDir: h.spoolDir, lockmode: 'lockfile' }), settings: h.settings, state: new StateStore(redis, h.settings.redis.prefix), imap: pool, log: h.log }, box, { dryRun: true });
        assert.deepEqual(result.plan.ops, [], 'in step');
      } finally {
        await pool.close();
        redis.disconnect();
      }

      // -- The user's own mail: all of it, unchanged.
      const afterAll = await listEverything(mc);
      const ownAfter = afterAll.filter((m) => !voicemailIds.has(m.messageId));
      assert.equal(ownAfter.length, before.length, `still ${before.length} messages of the user`);
      assert.deepEqual(ownAfter, before, 'same folders, UIDs, flags and bytes');
      assert.equal(ownAfter.filter((m) => m.flags.includes('\\Deleted')).length, 5, "the user's five \\Deleted messages are all still there");

      // -- The voicemail emails, where the phone says, and the deleted ones where the mode says.
      const vm = (id: string): Listed[] => afterAll.filter((m) => m.messageId === mid(id));
      const liveIn = (id: string): string[] => vm(id).filter((m) => !m.flags.includes('\\Deleted')).map((m) => m.folder);
      assert.deepEqual(vm(v1.msgId).map((m) => [m.folder, m.flags]), [['INBOX', ['\\Seen']]], 'heard: read in INBOX');
      assert.deepEqual(liveIn(v3.msgId), ['Work'], 'filed: in Work');
      assert.deepEqual(vm(v3.msgId).find((m) => m.folder === 'Work')!.flags, ['\\Seen'], 'filed from INBOX on the phone means heard');
      const v3InInbox = vm(v3.msgId).filter((m) => m.folder === 'INBOX');
      if (variant.filing === 'moved') assert.deepEqual(v3InInbox, [], 'filed: gone from INBOX');
      else assert.deepEqual(v3InInbox.map((m) => m.flags.includes('\\Deleted')), [true], 'filed without MOVE/UIDPLUS: the original is left flagged \\Deleted');
      for (const v of [v5, v7]) assert.deepEqual(vm(v.msgId).map((m) => [m.folder, m.flags]), [['INBOX', []]], 'new: unread in INBOX');
      assert.deepEqual(vm(v6.msgId).map((m) => [m.folder, m.flags]), [['INBOX', ['\\Flagged']]], 'urgent: flagged in INBOX');
      for (const v of [v2, v4]) {
        const where = vm(v.msgId).map((m) => [m.folder, m.flags.includes('\\Deleted')]);
        if (variant.deleted === 'expunged') assert.deepEqual(where, [], `${v.msgId}: expunged, nowhere`);
        if (variant.deleted === 'trash') assert.deepEqual(where, [['Trash', false]], `${v.msgId}: in Trash, only there`);
        if (variant.deleted === 'flagged') assert.deepEqual(where, [['INBOX', true]], `${v.msgId}: flagged \\Deleted in INBOX, not expunged`);
      }
      assert.equal(afterAll.length, before.length + 5 + (variant.deleted === 'expunged' ? 0 : 2) + (variant.filing === 'moved' ? 0 : 1), 'nothing else appeared');

      if (variant.trash) {
        const fallbacks = h.logLines.filter((l) => l.includes('left flagged') && l.includes('"fallback"'));
        assert.equal(fallbacks.length, 2, `each fallback logged with its reason:\n${h.logLines.join('\n')}`);
        assert.deepEqual((await listEverything(mc)).filter((m) => m.folder === variant.trash), [], 'no such folder was made');
      }

      // -- On the wire: never a bare EXPUNGE or CLOSE; UID EXPUNGE only where the server has UIDPLUS.
      const verbs = tap.verbs();
      assert.ok(verbs.includes('LOGIN') || verbs.includes('AUTHENTICATE'), 'vmbridge went through the tap');
      assert.deepEqual(tap.commands.filter((c) => /^\S+ (EXPUNGE|CLOSE)\b/i.test(c)), [], 'no bare EXPUNGE, no CLOSE');
      const uidExpunges = tap.commands.filter((c) => /^\S+ UID EXPUNGE\b/i.test(c));
      for (const c of uidExpunges) assert.match(c, /^\S+ UID EXPUNGE \d+$/i, 'one UID at a time');
      const hasUidplus = !variant.omit.includes('UIDPLUS');
      const hasMove = !variant.omit.includes('MOVE');
      const expectedUidExpunges = hasUidplus ? 2 + (hasMove ? 0 : 1) : 0;
      assert.equal(uidExpunges.length, expectedUidExpunges, `UID EXPUNGE sent ${expectedUidExpunges} times:\n${uidExpunges.join('\n')}`);
      const toTrash = tap.commands.filter((c) => /^\S+ UID (MOVE|COPY) \d+ "?Trash"?$/i.test(c));
      assert.equal(toTrash.length, variant.deleted === 'trash' ? 2 : 0, `to Trash:\n${toTrash.join('\n')}`);
      if (!hasMove) assert.equal(verbs.filter((v) => v === 'UID MOVE' || v === 'MOVE').length, 0, 'no MOVE to a server without it');
    });
  });
}

/**
 * How vmbridge looks at an IMAP folder, against a real Dovecot with and without CONDSTORE: the
 * view it keeps per connection must always equal what the server holds, whatever another session
 * (a mail client) did in between — flag changes, expunges, an expunge and an append that leave the
 * message count unchanged — and with CONDSTORE a second look must fetch only what changed. The
 * look for an identity before an APPEND must find an email another session put there after the
 * observation, so no duplicate is made.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { settingsSchema } from '../../src/config/schema.js';
import { capabilitiesOf } from '../../src/imap/capabilities.js';
import { rolePaths, type RolePaths } from '../../src/imap/folders.js';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { observeImap, type ImapObservation } from '../../src/imap/observe.js';
import { appendEmail } from '../../src/imap/operations.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { startDovecot, type DovecotServer } from '../support/dovecot.js';
import { startImapTap, type ImapTap } from '../support/imap-tap.js';

const DOMAIN = 'vmbridge.test';
const REF: MailboxRef = { context: 'default', mailbox: '1000' };
const USER = 'alice';
const PASS = 'Alice-Pw-1';

function email(messageId: string, subject: string): Buffer {
  return Buffer.from([
    'From: Voicemail <vm@example.invalid>',
    'To: alice@example.invalid',
    `Subject: ${subject}`,
    `Message-ID: ${messageId}`,
    'Date: Sun, 22 Nov 2026 11:32:30 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `${subject}`,
    '',
  ].join('\r\n'));
}

const voicemail = (id: string): Buffer => email(identityMessageId(REF, id, DOMAIN), `Voicemail ${id}`);
const ownMail = (n: number): Buffer => email(`<own-${n}@example.invalid>`, `Own mail ${n}`);

async function session(port: number): Promise<ImapFlow> {
  const c = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user: USER, pass: PASS }, logger: false, disableAutoIdle: true });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** What the server holds, read by a fresh session: identity -> [seen, flagged] of live copies in INBOX. */
async function truth(port: number): Promise<Map<string, Array<[boolean, boolean]>>> {
  const c = await session(port);
  try {
    await c.mailboxOpen('INBOX', { readOnly: true });
    const out = new Map<string, Array<[boolean, boolean]>>();
    if (c.mailbox && c.mailbox.exists > 0) {
      for (const m of await c.fetchAll('1:*', { uid: true, flags: true, headers: ['message-id'] })) {
        const mid = /message-id:\s*(\S+)/i.exec(m.headers?.toString('latin1') ?? '')?.[1];
        const id = /^<vm\.([^.]+)\./.exec(mid ?? '')?.[1];
        if (!id || m.flags?.has('\\Deleted')) continue;
        const list = out.get(id) ?? [];
        list.push([m.flags?.has('\\Seen') ?? false, m.flags?.has('\\Flagged') ?? false]);
        out.set(id, list);
      }
    }
    return out;
  } finally {
    await c.logout();
  }
}

function view(o: ImapObservation): Map<string, Array<[boolean, boolean]>> {
  const out = new Map<string, Array<[boolean, boolean]>>();
  for (const [id, copies] of o.copies) {
    // The identity encodes the id; the test's ids need no decoding.
    out.set(id, copies.filter((c) => c.role === 'inbox').map((c) => [c.seen, c.flagged]));
  }
  return out;
}

const sorted = (m: Map<string, Array<[boolean, boolean]>>): Array<[string, Array<[boolean, boolean]>]> => [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1));

for (const variant of [
  { name: 'with CONDSTORE', omit: [] as string[] },
  { name: 'without CONDSTORE', omit: ['CONDSTORE', 'QRESYNC'] },
]) {
  describe(`observing a folder, Dovecot ${variant.name}`, { timeout: 120_000 }, () => {
    let dovecot: DovecotServer;
    let tap: ImapTap;
    let vmb: ImapFlow;
    let user: ImapFlow;
    let paths: RolePaths;

    before(async () => {
      dovecot = await startDovecot({ users: [{ user: USER, pass: PASS }], omitCapabilities: variant.omit });
      tap = await startImapTap();
      tap.upstreamPort = dovecot.port;
      vmb = await session(tap.port);
      user = await session(dovecot.port);
      paths = await rolePaths(vmb, settingsSchema.shape.imap.parse({ host: '127.0.0.1' }).folders);
    });
    after(async () => {
      await vmb?.logout().catch(() => undefined);
      await user?.logout().catch(() => undefined);
      await tap?.close();
      await dovecot?.stop();
    });

    const look = async (): Promise<ImapObservation> => observeImap(vmb, REF, paths, DOMAIN);
    const uidOf = async (id: string): Promise<number> => {
      await user.mailboxOpen('INBOX');
      const uids = await user.search({ header: { 'message-id': `vm.${id}.` } }, { uid: true });
      assert.ok(Array.isArray(uids) && uids.length === 1, `one email for ${id}: ${JSON.stringify(uids)}`);
      return uids[0]!;
    };
    /** The UID FETCH commands vmbridge's session sent since `from`. */
    const fetches = (from: number): string[] => tap.commands.slice(from).filter((c) => / UID FETCH /i.test(c));

    it('keeps a view equal to the server through flag changes, expunges and a same-count swap', async () => {
      for (const id of ['a1', 'a2', 'a3']) await user.append('INBOX', voicemail(id));
      for (const n of [1, 2]) await user.append('INBOX', ownMail(n));
      assert.equal(capabilitiesOf(vmb).condstore, variant.omit.length === 0, 'the variant offers CONDSTORE or not');

      assert.deepEqual(sorted(view(await look())), sorted(await truth(dovecot.port)), 'first look');
      assert.equal(view(await look()).size, 3);

      // A mail client marks one read and flags another.
      await user.mailboxOpen('INBOX');
      await user.messageFlagsAdd(String(await uidOf('a1')), ['\\Seen'], { uid: true });
      await user.messageFlagsAdd(String(await uidOf('a2')), ['\\Flagged'], { uid: true });
      let mark = tap.commands.length;
      const afterFlags = await look();
      assert.deepEqual(sorted(view(afterFlags)), sorted(await truth(dovecot.port)), 'after flag changes');
      if (variant.omit.length === 0) {
        const sent = fetches(mark);
        assert.equal(sent.length, 1, `one fetch: ${sent.join(' | ')}`);
        assert.match(sent[0]!, /CHANGEDSINCE/i, 'only what changed is fetched');
      } else {
        assert.ok(fetches(mark).every((c) => !/CHANGEDSINCE/i.test(c)), 'no CHANGEDSINCE without CONDSTORE');
      }

      // The client expunges one voicemail email: noticed although nothing "changed" in MODSEQ terms.
      await user.messageDelete(String(await uidOf('a3')), { uid: true });
      assert.deepEqual(sorted(view(await look())), sorted(await truth(dovecot.port)), 'after an expunge');
      assert.equal(view(await look()).has('a3'), false);

      // One own message expunged and one new voicemail email appended: the count is unchanged.
      await user.mailboxOpen('INBOX');
      const own = await user.search({ header: { 'message-id': 'own-1@' } }, { uid: true });
      assert.ok(Array.isArray(own) && own.length === 1);
      await user.messageDelete(String(own[0]), { uid: true });
      await user.append('INBOX', voicemail('a4'));
      mark = tap.commands.length;
      const swapped = await look();
      assert.deepEqual(sorted(view(swapped)), sorted(await truth(dovecot.port)), 'after an expunge and an append');
      assert.ok(swapped.copies.has('a4'));

      // A \Deleted flag set by a client counts as gone.
      await user.mailboxOpen('INBOX');
      await user.messageFlagsAdd(String(await uidOf('a4')), ['\\Deleted'], { uid: true });
      assert.equal((await look()).copies.has('a4'), false, 'flagged \\Deleted: gone');
      assert.deepEqual(sorted(view(await look())), sorted(await truth(dovecot.port)));
    });

    it('finds an email another session appended after the observation, so APPEND makes no duplicate', async () => {
      await look();
      // Another session (a second vmbridge that crashed after its APPEND, say) writes the email of
      // b1 while this one is busy appending b0: the response to that APPEND announces it.
      await user.append('INBOX', voicemail('b1'));
      const first = await appendEmail(vmb, 'INBOX', voicemail('b0'), { seen: false, flagged: false }, { ref: REF, id: 'b0', domain: DOMAIN });
      const mark = tap.commands.length;
      const at = await appendEmail(vmb, 'INBOX', voicemail('b1'), { seen: false, flagged: false }, { ref: REF, id: 'b1', domain: DOMAIN });
      assert.equal(at.uid, await uidOf('b1'), 'the existing UID is returned');
      assert.ok(at.uid < first.uid, 'the other session\'s email, not a new one');
      assert.deepEqual((await truth(dovecot.port)).get('b1'), [[false, false]], 'exactly one email');
      const lookup = fetches(mark);
      assert.equal(lookup.length, 1, `the new UIDs were fetched: ${lookup.join(' | ')}`);
      assert.equal(tap.commands.slice(mark).filter((c) => / APPEND /i.test(c)).length, 0, 'no APPEND');

      // Nothing else arrives: the next APPEND needs no lookup at the server at all (the count the
      // server reports is what vmbridge's own APPENDs explain), and still makes exactly one email.
      await look();
      const quiet = tap.commands.length;
      const b2 = await appendEmail(vmb, 'INBOX', voicemail('b2'), { seen: true, flagged: false }, { ref: REF, id: 'b2', domain: DOMAIN });
      const b3 = await appendEmail(vmb, 'INBOX', voicemail('b3'), { seen: false, flagged: true }, { ref: REF, id: 'b3', domain: DOMAIN });
      assert.ok(b3.uid > b2.uid);
      assert.deepEqual(fetches(quiet), [], 'no fetch before either APPEND');
      assert.deepEqual((await truth(dovecot.port)).get('b2'), [[true, false]]);
      assert.deepEqual((await truth(dovecot.port)).get('b3'), [[false, true]]);
      assert.deepEqual(sorted(view(await look())), sorted(await truth(dovecot.port)), 'the view still matches');
    });
  });
}

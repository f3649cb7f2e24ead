/**
 * The core sync scenarios against a real private Cyrus IMAP in its default namespace: personal
 * folders under INBOX ("INBOX.Work"), delimiter ".", special-use flags in lower case ("\trash").
 * Spool to IMAP: initial import, a new voicemail, heard / saved to Work / urgent / deleted on the
 * phone. IMAP to spool through the sweep (Cyrus's IDLE does not report other sessions' changes, so
 * no push here). And the admin proxy login: SASL PLAIN as the Cyrus admin with the user as authzid
 * (imap.login.mode master, masterStyle authzid).
 *
 * vmbridge reaches Cyrus through a tap that writes down every command it sends; the user's mail
 * client (an independent imapflow session) goes direct.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { Redis } from 'ioredis';
import type { Settings } from '../../src/config/schema.js';
import { connectImap, isAuthFailure } from '../../src/imap/connect.js';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { ImapPool } from '../../src/imap/pool.js';
import { loadDirectory, startService, type Service } from '../../src/service.js';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';
import { FileSpoolStore } from '../../src/store/file-spool.js';
import { reconcileMailbox } from '../../src/sync/reconcile.js';
import { StateStore } from '../../src/sync/state-store.js';
import { deleteMessage, hearMessage, leaveVoicemail, listFolder, moveMessage } from '../support/asterisk-spool.js';
import { startCyrusHarness, type CyrusHarness } from '../support/harness.js';
import { startImapTap, type ImapTap } from '../support/imap-tap.js';
import type { MailClient } from '../support/mail-client.js';
import { waitFor } from '../support/wait.js';

const DOMAIN = 'vmbridge.test';
const box = (mailbox: string): MailboxRef => ({ context: 'default', mailbox });
const mid = (ref: MailboxRef, id: string): string => identityMessageId(ref, id, DOMAIN);
/** Where the voicemail folders are on Cyrus: under the personal namespace prefix "INBOX.". */
const CYRUS_FOLDERS = ['INBOX', 'INBOX.Work', 'INBOX.Family', 'INBOX.Friends'] as const;
const SPOOL_FOLDERS: readonly SpoolFolder[] = ['INBOX', 'Old', 'Urgent', 'Work', 'Family', 'Friends'];
const WAIT = { timeoutMs: 30_000, intervalMs: 100 };

describe('sync on a real Cyrus IMAP (default namespace: INBOX.Work, delimiter ".")', { timeout: 180_000 }, () => {
  let tap: ImapTap;
  let h: CyrusHarness;
  let service: Service | undefined;
  const refs = ['4000', '4001', '4002', '4003'].map(box);
  const clients = new Map<string, MailClient>();
  const mc = (ref: MailboxRef): MailClient => clients.get(ref.mailbox)!;

  const emails = (ref: MailboxRef, id: string) => mc(ref).list(CYRUS_FOLDERS).then((all) => all.filter((e) => e.messageId === mid(ref, id)));
  const whereInSpool = async (ref: MailboxRef, id: string): Promise<SpoolFolder[]> => {
    const out: SpoolFolder[] = [];
    for (const f of SPOOL_FOLDERS) if ((await listFolder(h.spoolDir, ref, f)).some((m) => m.msgId === id)) out.push(f);
    return out;
  };
  const msgnum = async (ref: MailboxRef, id: string, folder: SpoolFolder): Promise<number> => {
    const m = (await listFolder(h.spoolDir, ref, folder)).find((x) => x.msgId === id);
    if (!m) throw new Error(`${id} is not in ${folder}`);
    return m.msgnum;
  };
  const restart = async (settings: Settings): Promise<Service> => {
    await service?.close();
    service = await startService(settings, h.log);
    return service;
  };
  /** A reconcile of each mailbox on fresh connections, as a dry run: what would it still do? */
  const dryRunOps = async (settings: Settings, boxes: readonly MailboxRef[]): Promise<Map<string, unknown[]>> => {
    const redis = new Redis(h.redisUrl);
    const pool = new ImapPool(settings.imap, h.log);
    const out = new Map<string, unknown[]>();
    try {
      const directory = await loadDirectory(settings, h.log);
      for (const ref of boxes) {
        const result = await reconcileMailbox(
          { store: new FileSpoolStore({ spoolDir: h.spoolDir, lockmode: 'lockfile' }), settings, state: new StateStore(redis, settings.redis.prefix), imap: pool, log: h.log },
          directory.boxes.get(`${ref.mailbox}@default`)!,
          { dryRun: true },
        );
        out.set(ref.mailbox, [...result.plan.ops]);
      }
    } finally {
      await pool.close();
      redis.disconnect();
    }
    return out;
  };

  before(async () => {
    tap = await startImapTap();
    h = await startCyrusHarness({
      boxes: refs.map((r) => ({ mailbox: r.mailbox, fullName: `Owner ${r.mailbox}` })),
      settings: (base) => {
        const imap = base.imap as Record<string, unknown>;
        tap.upstreamPort = imap.port as number;
        return { ...base, imap: { ...imap, port: tap.port } };
      },
    });
    for (const ref of refs) clients.set(ref.mailbox, await h.mail(ref));
  });
  after(async () => {
    // VMB_TEST_LOG=1 also shows every command vmbridge sent.
    if (process.env['VMB_TEST_LOG']) process.stderr.write(`${tap.commands.join('\n')}\n`);
    await service?.close().catch(() => undefined);
    await h?.stop();
    await tap?.close();
  });

  it('the server is what these tests claim: INBOX. prefix, "." delimiter, lower-case special-use, UIDPLUS and MOVE', async () => {
    const c = mc(box('4000')).client;
    assert.deepEqual(c.namespace, { prefix: 'INBOX.', delimiter: '.' });
    const list = await c.list();
    const trash = list.find((f) => f.path === 'INBOX.Trash');
    assert.ok(trash, `autocreated INBOX.Trash: ${list.map((f) => f.path).join(', ')}`);
    assert.ok([...trash.flags].includes('\\trash'), `\\trash in lower case: ${[...trash.flags].join(' ')}`);
    for (const cap of ['UIDPLUS', 'MOVE', 'CONDSTORE', 'QRESYNC', 'SPECIAL-USE', 'QUOTA']) assert.ok(c.capabilities.has(cap), cap);
    assert.equal(c.capabilities.has('NOTIFY'), false, 'no NOTIFY on Cyrus');
    assert.equal(list.some((f) => f.path === 'Work' || f.path === 'INBOX.Work'), false, 'no Work folder yet');
  });

  it('imports 3 mailboxes x 4 voicemails once each, and a second run plans nothing', async () => {
    const ids = new Map<string, string[]>();
    for (const ref of refs.slice(0, 3)) {
      const list: string[] = [];
      for (let i = 0; i < 4; i++) {
        const left = await leaveVoicemail(h.spoolDir, ref, { callerid: `"Caller ${i}" <555${String(i).padStart(4, '0')}>`, duration: 3 + i, origtime: 1_795_000_000 + i * 60, urgent: i === 3 });
        list.push(left.msgId);
      }
      ids.set(ref.mailbox, list);
    }
    await restart(h.settings);
    for (const ref of refs.slice(0, 3)) {
      const seen = await waitFor(`4 emails for ${ref.mailbox}`, async () => {
        const all = await mc(ref).list(CYRUS_FOLDERS);
        return all.length >= 4 ? all : undefined;
      }, WAIT);
      assert.equal(seen.length, 4, 'exactly 4, no duplicates');
      const list = ids.get(ref.mailbox)!;
      for (const [i, id] of list.entries()) {
        const e = seen.filter((x) => x.messageId === mid(ref, id));
        assert.equal(e.length, 1, `one email for ${id}`);
        assert.equal(e[0]!.folder, 'INBOX');
        assert.equal(e[0]!.flags.has('\\Seen'), false, 'new voicemail is unseen');
        assert.equal(e[0]!.flags.has('\\Flagged'), i === 3, 'urgent is flagged, the others are not');
      }
    }
    const ops = await dryRunOps(h.settings, refs.slice(0, 3));
    for (const [mailbox, list] of ops) assert.deepEqual(list, [], `${mailbox}: nothing to do`);
  });

  it('a new voicemail appears as an email with its headers', async () => {
    const ref = box('4000');
    const left = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Zoë Example" <5551234>', duration: 75, origtime: 1_795_347_150 });
    const [email] = await waitFor('the new email', async () => {
      const e = await emails(ref, left.msgId);
      return e.length > 0 ? e : undefined;
    }, WAIT);
    assert.equal(email!.folder, 'INBOX');
    const parsed = await simpleParser(await mc(ref).source('INBOX', email!.uid));
    assert.equal(parsed.subject, 'Voicemail from Zoë Example (5551234), 1:15');
    assert.equal(String(parsed.headers.get('x-asterisk-vm-message-id') ?? ''), left.msgId);
    assert.equal(parsed.messageId, mid(ref, left.msgId));
    assert.deepEqual(parsed.attachments.map((a) => a.contentType), ['audio/mpeg'], 'one MP3, the default');
  });

  it('heard -> \\Seen; saved to Work -> INBOX.Work (created); urgent -> \\Flagged; deleted on the phone -> UID EXPUNGE of exactly that UID', async () => {
    const ref = box('4001');
    const a = await leaveVoicemail(h.spoolDir, ref, { callerid: '"A" <1>', duration: 4 });
    const b = await leaveVoicemail(h.spoolDir, ref, { callerid: '"B" <2>', duration: 4 });
    const u = await leaveVoicemail(h.spoolDir, ref, { callerid: '"U" <5>', duration: 4, urgent: true });
    for (const id of [a.msgId, b.msgId, u.msgId]) await waitFor(`email of ${id}`, async () => (await emails(ref, id)).length === 1, WAIT);

    const urgent = await emails(ref, u.msgId);
    assert.equal(urgent[0]!.flags.has('\\Flagged'), true, 'urgent is flagged');
    assert.equal(urgent[0]!.flags.has('\\Seen'), false, 'urgent is unseen');

    await hearMessage(h.spoolDir, ref, await msgnum(ref, a.msgId, 'INBOX'));
    await waitFor('heard -> \\Seen', async () => {
      const e = await emails(ref, a.msgId);
      return e.length === 1 && e[0]!.folder === 'INBOX' && e[0]!.flags.has('\\Seen');
    }, WAIT);

    await moveMessage(h.spoolDir, ref, 'INBOX', await msgnum(ref, b.msgId, 'INBOX'), 'Work');
    await waitFor('saved to Work -> INBOX.Work', async () => {
      const e = await emails(ref, b.msgId);
      return e.length === 1 && e[0]!.folder === 'INBOX.Work';
    }, WAIT);
    const work = (await mc(ref).client.list()).find((f) => f.path === 'INBOX.Work');
    assert.equal(work?.delimiter, '.', 'INBOX.Work, with the server\'s delimiter');

    // Deleted on the phone: exactly that email is expunged; the user's own \Deleted mail stays.
    await mc(ref).client.append('INBOX', Buffer.from('From: a@b\r\nSubject: mine\r\nMessage-ID: <mine@example>\r\n\r\nhello\r\n'), ['\\Deleted']);
    const [heard] = await emails(ref, a.msgId);
    await deleteMessage(h.spoolDir, ref, 'Old', await msgnum(ref, a.msgId, 'Old'));
    await waitFor('deleted on the phone -> email gone', async () => (await emails(ref, a.msgId)).length === 0, WAIT);
    const all = await mc(ref).list(['INBOX'], { includeDeleted: true });
    assert.equal(all.filter((e) => e.messageId === mid(ref, a.msgId)).length, 0, 'expunged, not just flagged');
    assert.equal(all.filter((e) => e.messageId === '<mine@example>').length, 1, "the user's own \\Deleted message is untouched");
    assert.equal(all.filter((e) => e.messageId === mid(ref, u.msgId)).length, 1, 'the other voicemail is still there');

    assert.deepEqual(tap.commands.filter((c) => /^\S+ (EXPUNGE|CLOSE)\b/i.test(c)), [], 'no bare EXPUNGE, no CLOSE');
    assert.deepEqual(tap.commands.filter((c) => /^\S+ UID EXPUNGE\b/i.test(c)).map((c) => c.split(' ').slice(1).join(' ')), [`UID EXPUNGE ${heard!.uid}`], 'one UID EXPUNGE, of exactly that UID');

    // On fresh connections (a new folder listing), Work is still seen where it is: nothing to do,
    // in particular no removal of the voicemail in Work.
    const ops = await dryRunOps(h.settings, [ref]);
    assert.deepEqual(ops.get(ref.mailbox), [], 'a new reconcile plans nothing');
    assert.deepEqual(await whereInSpool(ref, b.msgId), ['Work']);
  });

  describe('mail client to spool, heard by the sweep (no IDLE)', () => {
    const ref = box('4002');
    before(async () => {
      // IDLE off: the sweep alone carries the user's changes, as on a server whose IDLE is silent.
      await restart({ ...h.settings, spool: { ...h.settings.spool, sweepSeconds: 1 }, imap: { ...h.settings.imap, idle: { ...h.settings.imap.idle, maxAccounts: 0 } } });
    });

    it('read -> Old; filed in INBOX.Family -> Family; deleted -> removed', async () => {
      const [first, second, third] = (await listFolder(h.spoolDir, ref, 'INBOX')).slice(0, 3).map((m) => m.msgId);
      assert.ok(first && second && third, 'three voicemails of the import are still new');
      const client = mc(ref).client;
      const uidOf = async (id: string): Promise<number> => (await emails(ref, id))[0]!.uid;
      const inInbox = async <T>(fn: () => Promise<T>): Promise<T> => {
        const lock = await client.getMailboxLock('INBOX');
        try {
          return await fn();
        } finally {
          lock.release();
        }
      };
      const inSpool = (id: string, where: SpoolFolder[]) =>
        waitFor(`${id} in ${where.join(', ') || 'no folder'}`, async () => JSON.stringify(await whereInSpool(ref, id)) === JSON.stringify(where), WAIT);

      const readUid = await uidOf(first);
      await inInbox(() => client.messageFlagsAdd(String(readUid), ['\\Seen'], { uid: true }));
      await inSpool(first, ['Old']);

      await client.mailboxCreate('INBOX.Family');
      const fileUid = await uidOf(second);
      await inInbox(() => client.messageMove(String(fileUid), 'INBOX.Family', { uid: true }));
      await inSpool(second, ['Family']);

      const deleteUid = await uidOf(third);
      await inInbox(() => client.messageDelete(String(deleteUid), { uid: true }));
      await inSpool(third, []);

      // The rest of the mailbox is as it was, and the email the user filed stays where they put it.
      assert.deepEqual((await emails(ref, second)).map((e) => e.folder), ['INBOX.Family']);
      assert.deepEqual(await whereInSpool(ref, first), ['Old']);
    });
  });

  describe('admin proxy login: imap.login.mode master, masterStyle authzid (SASL PLAIN with an authzid)', () => {
    const masterSettings = (user: string, pass: string): Settings => ({
      ...h.settings,
      imap: { ...h.settings.imap, login: { ...h.settings.imap.login, mode: 'master', masterStyle: 'authzid', masterUser: user, masterPassword: pass } },
    });

    it('syncs a mailbox logged in as the Cyrus admin acting as its user', async () => {
      const settings = masterSettings(h.cyrus.admin.user, h.cyrus.admin.pass);
      const ref = box('4003');
      const commandsBefore = tap.commands.length;
      await restart(settings);
      const left = await leaveVoicemail(h.spoolDir, ref, { callerid: '"Via admin" <5550003>', duration: 6 });
      await waitFor('the email in the user\'s own INBOX', async () => (await emails(ref, left.msgId)).length === 1, WAIT);
      await moveMessage(h.spoolDir, ref, 'INBOX', await msgnum(ref, left.msgId, 'INBOX'), 'Friends');
      await waitFor('saved to Friends -> INBOX.Friends', async () => {
        const e = await emails(ref, left.msgId);
        return e.length === 1 && e[0]!.folder === 'INBOX.Friends';
      }, WAIT);

      // The mailboxes imported with per-user logins are the same mailboxes under the admin login.
      const ops = await dryRunOps(settings, refs);
      for (const [mailbox, list] of ops) assert.deepEqual(list, [], `${mailbox}: nothing to do under the admin login`);

      // On the wire: AUTHENTICATE PLAIN, authcid = the admin, authzid = the user; never LOGIN.
      const mine = tap.commands.slice(commandsBefore);
      assert.deepEqual(mine.filter((c) => /^\S+ LOGIN\b/i.test(c)), [], 'no plain LOGIN');
      assert.ok(mine.some((c) => /^\S+ AUTHENTICATE PLAIN\b/i.test(c)), 'AUTHENTICATE PLAIN was used');
      // Each SASL PLAIN response, on the AUTHENTICATE line (SASL-IR) or a line of its own:
      // base64 of authzid NUL authcid NUL password.
      const responses = mine
        .map((c) => (/^\S+ AUTHENTICATE PLAIN \S+$/i.test(c) ? c.split(' ')[3]! : c))
        .filter((c) => /^[A-Za-z0-9+/]+={0,2}$/.test(c))
        .map((b64) => Buffer.from(b64, 'base64').toString('utf8').split('\0'))
        .filter((parts) => parts.length === 3);
      assert.ok(responses.length > 0, 'the SASL PLAIN responses were read off the wire');
      const authzids = new Set<string>();
      for (const [authzid, authcid] of responses) {
        assert.equal(authcid, h.cyrus.admin.user, 'authenticated as the admin');
        authzids.add(authzid ?? '');
      }
      assert.ok(authzids.has('u4003'), `acting as u4003: ${[...authzids].join(', ')}`);
      assert.ok([...authzids].every((z) => /^u400[0-3]$/.test(z)), 'always as one of the users');
    });

    it('a user who is not an admin cannot act as another: the login is refused as an authentication failure', async () => {
      await assert.rejects(
        connectImap(masterSettings('u4000', 'pw-u4000').imap, { user: 'u4001' }),
        (err: unknown) => isAuthFailure(err),
      );
      await assert.rejects(
        connectImap(masterSettings(h.cyrus.admin.user, 'wrong-password').imap, { user: 'u4001' }),
        (err: unknown) => isAuthFailure(err),
      );
    });
  });
});

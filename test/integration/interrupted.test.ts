/**
 * Interrupted at every step, in the manner of mbsync's tests: one plan holding every kind of op
 * (APPEND, flag STORE, MOVE, EXPUNGE, and the store's move and removal with their renumbering) is
 * stopped right after the effect of its k-th op and before that op's record is written (the worst
 * moment), for every k; then vmbridge starts again (a new IMAP pool, new connections) and
 * reconciles. The end state must equal the uninterrupted run's: every email once, in the same
 * folder with the same flags, the store the same and densely numbered, the records the same, and
 * no lock left in the mailbox. For the file spool and for Asterisk's ODBC table (PostgreSQL), with
 * the audio in the rows and on disk (odbc_audio_on_disk=yes: every message keeps all its files, and
 * no name is left over).
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { identityMessageId } from '../../src/imap/identity-header.js';
import { ImapPool } from '../../src/imap/pool.js';
import { loadDirectory } from '../../src/service.js';
import type { MailboxRef, SyncedSpoolFolder } from '../../src/spool/types.js';
import { FileSpoolStore } from '../../src/store/file-spool.js';
import { OdbcStore } from '../../src/store/odbc/odbc-store.js';
import type { VoicemailStore } from '../../src/store/types.js';
import type { Directory } from '../../src/sync/directory.js';
import { reconcileMailbox } from '../../src/sync/reconcile.js';
import { StateStore } from '../../src/sync/state-store.js';
import { AsteriskOdbc } from '../support/asterisk-odbc.js';
import { deleteMessage, leaveVoicemail, listFolder, moveMessage } from '../support/asterisk-spool.js';
import { startPostgres, type DatabaseServer } from '../support/databases.js';
import { startHarness, type Harness } from '../support/harness.js';
import { VOICEMAIL_FOLDERS } from '../support/mail-client.js';
import { wavOf } from '../support/store-contract.js';

const TABLE = 'voicemail_messages';
const DISK_TABLE = 'voicemail_messages_on_disk';
const DISK_FORMATS = ['wav', 'gsm'] as const;
const LABELS = ['A', 'B', 'C', 'D', 'E', 'F'] as const;
const BOXES = 11;

/** What Asterisk does on the phone side, for one store kind. */
interface Phone {
  readonly store: VoicemailStore;
  /** Audio files each message has. */
  readonly formats: number;
  /** The store's audio is the spool folder's msgNNNN files and nothing else there (ODBC audio on disk). */
  readonly onlyAudioInFolders?: boolean;
  leave(ref: MailboxRef): Promise<string>;
  move(ref: MailboxRef, id: string, from: SyncedSpoolFolder, to: SyncedSpoolFolder): Promise<void>;
  remove(ref: MailboxRef, id: string, folder: SyncedSpoolFolder): Promise<void>;
}

class Interrupted extends Error {}

describe('interrupted at every step of a plan, then restarted', { timeout: 900_000 }, () => {
  let h: Harness;
  let db: DatabaseServer;
  let asterisk: AsteriskOdbc;
  let onDisk: AsteriskOdbc;
  let redis: Redis;
  let directory: Directory;
  const contexts = ['spool', 'odbc', 'odbcdisk'] as const;

  before(async () => {
    db = await startPostgres();
    h = await startHarness({ boxes: contexts.flatMap((context) => Array.from({ length: BOXES }, (_, i) => ({ mailbox: String(7000 + i), context }))) });
    asterisk = new AsteriskOdbc({ url: db.url, table: TABLE, spoolDir: h.spoolDir });
    await asterisk.createTable();
    onDisk = new AsteriskOdbc({ url: db.url, table: DISK_TABLE, spoolDir: h.spoolDir, audioOnDisk: { spoolDir: h.spoolDir, formats: DISK_FORMATS } });
    await onDisk.createTable();
    redis = new Redis(h.redisUrl);
    directory = await loadDirectory(h.settings, h.log);
  });
  after(async () => {
    redis?.disconnect();
    await asterisk?.close();
    await onDisk?.close();
    await h?.stop();
    await db?.stop();
  });

  const phones: Record<(typeof contexts)[number], () => Phone> = {
    spool: () => {
      const msgnumOf = async (ref: MailboxRef, folder: SyncedSpoolFolder, id: string): Promise<number> => (await listFolder(h.spoolDir, ref, folder)).find((m) => m.msgId === id)!.msgnum;
      return {
        store: new FileSpoolStore({ spoolDir: h.spoolDir, lockmode: 'lockfile' }),
        formats: 1,
        leave: async (ref) => (await leaveVoicemail(h.spoolDir, ref, { formats: ['wav'], audio: wavOf('v') })).msgId,
        move: async (ref, id, from, to) => void (await moveMessage(h.spoolDir, ref, from, await msgnumOf(ref, from, id), to)),
        remove: async (ref, id, folder) => deleteMessage(h.spoolDir, ref, folder, await msgnumOf(ref, folder, id)),
      };
    },
    odbc: () => odbcPhone(asterisk, TABLE, false),
    odbcdisk: () => odbcPhone(onDisk, DISK_TABLE, true),
  };

  const odbcPhone = (table: AsteriskOdbc, name: string, audioOnDisk: boolean): Phone => {
    const msgnumOf = async (ref: MailboxRef, folder: SyncedSpoolFolder, id: string): Promise<number> => (await table.folder(ref, folder)).find((m) => m.msgId === id)!.msgnum;
    return {
      store: new OdbcStore({ url: db.url, urlSetting: 'spool.odbc.url', table: name, asteriskSpoolDir: h.spoolDir, localSpoolDir: h.spoolDir, lockmode: 'lockfile', recordingExt: 'wav', audioOnDisk, pollSeconds: 0 }),
      formats: audioOnDisk ? DISK_FORMATS.length : 1,
      onlyAudioInFolders: audioOnDisk,
      leave: async (ref) => (await table.leave(ref, { audio: wavOf('v') })).msgId,
      move: async (ref, id, from, to) => void (await table.move(ref, from, await msgnumOf(ref, from, id), to)),
      remove: async (ref, id, folder) => table.remove(ref, folder, await msgnumOf(ref, folder, id)),
    };
  };

  const titles = { spool: 'file spool', odbc: 'ODBC table (PostgreSQL)', odbcdisk: 'ODBC table with the audio on disk (PostgreSQL)' } as const;
  for (const context of contexts) {
    describe(titles[context], () => {
      let phone: Phone;
      before(() => {
        phone = phones[context]();
      });
      after(async () => {
        await phone.store.close();
      });

      const reconcile = async (ref: MailboxRef, afterEffect?: () => void): Promise<number> => {
        const pool = new ImapPool(h.settings.imap, h.log);
        try {
          const box = directory.boxes.get(`${ref.mailbox}@${ref.context}`)!;
          const r = await reconcileMailbox({ store: phone.store, settings: h.settings, state: new StateStore(redis, h.settings.redis.prefix), imap: pool, log: h.log }, box, afterEffect ? { afterEffect } : {});
          return r.applied;
        } finally {
          await pool.close();
        }
      };

      /** Six voicemails synced, then changes on both sides and one new voicemail: a plan of every kind. */
      const prepare = async (ref: MailboxRef): Promise<Map<string, string>> => {
        const labels = new Map<string, string>();
        for (const l of LABELS) labels.set(await phone.leave(ref), l);
        await reconcile(ref);
        const id = (l: string): string => [...labels].find(([, v]) => v === l)![0];
        const mail = await h.mail(ref);
        const uidOf = async (l: string): Promise<number> => (await mail.list(['INBOX'])).find((e) => e.messageId === identityMessageId(ref, id(l), 'vmbridge.test'))!.uid;
        // Phone side: A heard (to Old), B saved to Work, C deleted.
        await phone.move(ref, id('A'), 'INBOX', 'Old');
        await phone.move(ref, id('B'), 'INBOX', 'Work');
        await phone.remove(ref, id('C'), 'INBOX');
        // Mail side: D flagged, E deleted, F filed in Family.
        const [d, e, f] = [await uidOf('D'), await uidOf('E'), await uidOf('F')];
        await mail.client.mailboxCreate('Family').catch(() => undefined);
        const lock = await mail.client.getMailboxLock('INBOX');
        try {
          await mail.client.messageFlagsAdd(String(d), ['\\Flagged'], { uid: true });
          await mail.client.messageFlagsAdd(String(e), ['\\Deleted'], { uid: true });
          await mail.client.messageDelete(String(e), { uid: true });
          await mail.client.messageMove(String(f), 'Family', { uid: true });
        } finally {
          lock.release();
        }
        // And a new voicemail.
        labels.set(await phone.leave(ref), 'G');
        return labels;
      };

      /** Both sides and the records, with each voicemail named by its label. */
      const endState = async (ref: MailboxRef, labels: Map<string, string>): Promise<unknown> => {
        const name = (id: string): string => labels.get(id) ?? `unknown ${id}`;
        const mail = await h.mail(ref);
        const emails = (await mail.list(VOICEMAIL_FOLDERS)).map((e) => {
          const id = [...labels.keys()].find((k) => identityMessageId(ref, k, 'vmbridge.test') === e.messageId);
          return `${id ? name(id) : e.messageId} ${e.folder}${e.flags.has('\\Seen') ? ' seen' : ''}${e.flags.has('\\Flagged') ? ' flagged' : ''}`;
        }).sort();
        const snapshot = await phone.store.readMailbox(ref);
        const store = snapshot.messages.map((m) => `${name(m.id)} ${m.folder}`).sort();
        const byFolder = new Map<string, number[]>();
        for (const m of snapshot.messages) byFolder.set(m.folder, [...(byFolder.get(m.folder) ?? []), m.msgnum]);
        for (const [folder, nums] of byFolder) assert.deepEqual(nums.sort((a, b) => a - b), nums.map((_, i) => i), `${ref.mailbox} ${folder} numbered 0..n-1`);
        const { records } = await new StateStore(redis, h.settings.redis.prefix).load(ref);
        const recorded = [...records].map(([id, r]) => `${name(id)} ${r.folder}`).sort();
        const incomplete = snapshot.messages.filter((m) => m.audio.length !== phone.formats).map((m) => `${name(m.id)} has ${m.audio.length} audio files`);
        const audioNames = new Set(snapshot.messages.flatMap((m) => m.audio.map((a) => `${m.folder}/${basename(a.path)}`)));
        const locks: string[] = [];
        const strays: string[] = [];
        const boxDir = join(h.spoolDir, 'voicemail', ref.context, ref.mailbox);
        for (const folder of await readdir(boxDir).catch(() => [] as string[])) {
          for (const f of await readdir(join(boxDir, folder)).catch(() => [] as string[])) {
            if (f.startsWith('.lock')) locks.push(`${folder}/${f}`);
            else if (phone.onlyAudioInFolders && folder !== 'tmp' && !audioNames.has(`${folder}/${f}`)) strays.push(`${folder}/${f}`);
          }
        }
        return { emails, store, recorded, incomplete, locks, strays };
      };

      it('every stop point ends as the uninterrupted run does', async () => {
        const ref = (i: number): MailboxRef => ({ context, mailbox: String(7000 + i) });
        // The uninterrupted run: how many effects its plan has, and the state it ends in.
        const base = ref(0);
        const baseLabels = await prepare(base);
        let effects = 0;
        await reconcile(base, () => void effects++);
        assert.equal(await reconcile(base), 0, 'one reconcile finishes the job');
        const expected = await endState(base, baseLabels);
        assert.ok(effects >= 7, `the plan has every kind of op (${effects} effects)`);
        assert.ok(effects < BOXES, `enough mailboxes for every stop point (${effects} effects)`);
        assert.deepEqual(expected, {
          emails: ['A INBOX seen', 'B Work seen', 'D INBOX flagged', 'F Family', 'G INBOX'],
          store: ['A Old', 'B Work', 'D Urgent', 'F Family', 'G INBOX'],
          recorded: ['A Old', 'B Work', 'D Urgent', 'F Family', 'G INBOX'],
          incomplete: [],
          locks: [],
          strays: [],
        });

        for (let k = 1; k <= effects; k++) {
          const r = ref(k);
          const labels = await prepare(r);
          let seen = 0;
          await assert.rejects(reconcile(r, () => {
            if (++seen === k) throw new Interrupted(`stopped after effect ${k}`);
          }), Interrupted);
          // Restarted: reconcile until nothing is left to do (a stop may leave a second pass).
          for (let pass = 0; pass < 3 && (await reconcile(r)) > 0; pass++);
          assert.deepEqual(await endState(r, labels), expected, `stopped after effect ${k} of ${effects}`);
        }
      });
    });
  }
});

/**
 * Asterisk's ODBC voicemail table as a store, against real PostgreSQL and MariaDB from Debian:
 * the store contract (the same tests the file spool passes, with the audio in the rows and with
 * odbc_audio_on_disk=yes), the PostgreSQL trigger's notices, old tables with macrocontext, bad
 * input named by table, row or column, and the audio files on disk moving with their rows, also
 * when a change is interrupted.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chown, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { MailboxRef } from '../../src/spool/types.js';
import { UnsafeSpoolEntryError } from '../../src/spool/write.js';
import { OdbcRowError, OdbcStore, OdbcTableError, type OdbcStoreOptions } from '../../src/store/odbc/odbc-store.js';
import { openDatabase, type SqlDatabase } from '../../src/store/odbc/sql.js';
import { postgresTriggerSql } from '../../src/store/odbc/trigger.js';
import { AsteriskOdbc, type SchemaRevision } from '../support/asterisk-odbc.js';
import { startMariadb, startPostgres, type DatabaseServer } from '../support/databases.js';
import { storeContract, wavOf } from '../support/store-contract.js';
import { waitFor } from '../support/wait.js';

const ASTERISK_SPOOL = '/var/spool/asterisk';
let tables = 0;

interface Made {
  readonly store: OdbcStore;
  readonly asterisk: AsteriskOdbc;
  readonly local: string;
  readonly opts: OdbcStoreOptions;
  close(): Promise<void>;
}

interface MakeOptions {
  revision?: SchemaRevision;
  pollSeconds?: number;
  trigger?: boolean;
  create?: boolean;
  ownership?: { uid: number; gid: number };
  /** odbc_audio_on_disk=yes with these formats. */
  audioOnDisk?: readonly string[];
}

async function makeStore(db: DatabaseServer, opts: MakeOptions = {}): Promise<Made> {
  const table = `voicemail_messages_${++tables}`;
  const local = await mkdtemp(join(tmpdir(), 'vmbridge-odbc-'));
  const asterisk = new AsteriskOdbc({ url: db.url, table, spoolDir: ASTERISK_SPOOL, ...(opts.revision ? { revision: opts.revision } : {}), ...(opts.audioOnDisk ? { audioOnDisk: { spoolDir: local, formats: opts.audioOnDisk } } : {}) });
  if (opts.create !== false) await asterisk.createTable();
  if (opts.trigger) await asterisk.db.query(postgresTriggerSql(table));
  const storeOpts: OdbcStoreOptions = {
    url: db.url,
    urlSetting: 'store.odbc.url',
    table,
    asteriskSpoolDir: ASTERISK_SPOOL,
    localSpoolDir: local,
    lockmode: 'lockfile',
    recordingExt: 'wav',
    audioOnDisk: opts.audioOnDisk !== undefined,
    pollSeconds: opts.pollSeconds ?? 1,
    ...(opts.ownership ? { ownership: opts.ownership } : {}),
  };
  const store = new OdbcStore(storeOpts);
  return {
    store,
    asterisk,
    local,
    opts: storeOpts,
    async close() {
      await asterisk.close();
      await rm(local, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// odbc_audio_on_disk=yes: the files move with the rows

const FORMATS = ['wav', 'WAV', 'gsm'] as const;
/** Each message's file of each format has bytes of its own, so a file that went to the wrong place shows. */
const bytesOf = (label: string, ext: string): Buffer => wavOf(`${label}.${ext}`);

class Interrupted extends Error {}

/**
 * The store's database, stopped once at the first transaction that runs a statement matching
 * `match`: before its commit (the transaction rolls back after the store's work in it, files
 * included, is done) or right after it (committed, and the store never hears so).
 */
function interruptOnce(url: string, match: RegExp, when: 'before commit' | 'after commit'): SqlDatabase {
  const db = openDatabase(url, 'test database');
  let fired = false;
  return {
    dialect: db.dialect,
    query: (sql, params) => db.query(sql, params),
    close: () => db.close(),
    async transaction(fn) {
      let hit = false;
      const result = await db.transaction(async (tx) => {
        const r = await fn({ query: (sql, params) => ((hit ||= match.test(sql)), tx.query(sql, params)) });
        if (hit && !fired && when === 'before commit') {
          fired = true;
          throw new Interrupted(`stopped before the commit of ${match}`);
        }
        return r;
      });
      if (hit && !fired && when === 'after commit') {
        fired = true;
        throw new Interrupted(`stopped after the commit of ${match}`);
      }
      return result;
    },
  };
}

/** The store's database, running `action` once right after the first statement matching `match` answered. */
function afterQuery(url: string, match: RegExp, action: () => Promise<void>): SqlDatabase {
  const db = openDatabase(url, 'test database');
  let fired = false;
  return {
    dialect: db.dialect,
    async query(sql, params) {
      const rows = await db.query(sql, params);
      if (!fired && match.test(sql)) {
        fired = true;
        await action();
      }
      return rows;
    },
    transaction: (fn) => db.transaction(fn),
    close: () => db.close(),
  };
}

function audioOnDiskTests(serverName: string, database: () => DatabaseServer): void {
  describe(`odbc_audio_on_disk=yes on ${serverName}: audio files move with their rows (${FORMATS.join(', ')})`, () => {
    let n = 0;
    const freshBox = (): MailboxRef => ({ context: 'ondisk', mailbox: `${3000 + n++}` });

    interface Box {
      readonly m: Made;
      readonly ref: MailboxRef;
      readonly ids: Map<string, string>;
    }

    const setUp = async (labels: readonly string[], opts: MakeOptions = {}): Promise<Box> => {
      const m = await makeStore(database(), { audioOnDisk: FORMATS, ...opts });
      const ref = freshBox();
      const ids = new Map<string, string>();
      for (const label of labels) ids.set(label, (await m.asterisk.leave(ref, { audio: wavOf(label), files: (ext) => bytesOf(label, ext) })).msgId);
      return { m, ref, ids };
    };
    const tearDown = async (b: Box): Promise<void> => {
      await b.m.store.close();
      await b.m.close();
    };
    const id = (b: Box, label: string): string => b.ids.get(label)!;

    /** The folder's rows are `labels` in order, and its files exactly theirs, each under one name. */
    const expectFolder = async (b: Box, folder: string, labels: readonly string[]): Promise<void> => {
      assert.deepEqual(await b.m.asterisk.folder(b.ref, folder), labels.map((l, i) => ({ msgnum: i, msgId: id(b, l) })), `${folder} rows`);
      const files = await b.m.asterisk.files(b.ref, folder);
      const want = new Map<string, string>();
      labels.forEach((l, i) => FORMATS.forEach((ext) => want.set(`msg${String(i).padStart(4, '0')}.${ext}`, `${l}.${ext}`)));
      const got = new Map([...files].map(([name, bytes]) => [name, bytes.subarray(44).toString()]));
      assert.deepEqual(new Map([...got].sort()), new Map([...want].sort()), `${folder} files`);
      for (const name of files.keys()) assert.equal((await lstat(join(b.m.asterisk.localDir(b.ref, folder), name))).nlink, 1, `${folder}/${name} has no second name left`);
    };

    /** What the store reads: every message with every format, each file its own. */
    const expectReadable = async (b: Box, store: OdbcStore, want: Record<string, readonly string[]>): Promise<void> => {
      const s = await store.readMailbox(b.ref);
      assert.deepEqual(s.problems, []);
      for (const [folder, labels] of Object.entries(want)) {
        const msgs = s.messages.filter((x) => x.folder === folder).sort((x, y) => x.msgnum - y.msgnum);
        assert.deepEqual(msgs.map((x) => x.id), labels.map((l) => id(b, l)), `${folder} as read`);
        for (const [i, msg] of msgs.entries()) {
          assert.deepEqual(msg.audio.map((a) => a.ext).sort(), [...FORMATS].sort(), `${folder} message ${i} has every format`);
          for (const a of msg.audio) assert.equal((await store.readAudio(b.ref, a.path)).subarray(44).toString(), `${labels[i]}.${a.ext}`, a.path);
        }
      }
    };

    it('an email read (INBOX to Old) moves the row and every format\'s file, and renumbers INBOX with its files', async () => {
      const b = await setUp(['a', 'b', 'c']);
      try {
        await b.m.asterisk.move(b.ref, 'INBOX', 2, 'Old');
        const out = await b.m.store.move({ ref: b.ref }, id(b, 'a'), 'INBOX', 'Old');
        assert.deepEqual({ done: out.done, via: out.done && out.via, alreadyDone: out.done && out.alreadyDone }, { done: true, via: 'sql', alreadyDone: false });
        await expectFolder(b, 'INBOX', ['b']);
        await expectFolder(b, 'Old', ['c', 'a']);
        await expectReadable(b, b.m.store, { INBOX: ['b'], Old: ['c', 'a'] });
        // Asterisk's next message goes after the last, and its files beside the others.
        b.ids.set('d', (await b.m.asterisk.leave(b.ref, { audio: wavOf('d'), files: (ext) => bytesOf('d', ext) })).msgId);
        await expectFolder(b, 'INBOX', ['b', 'd']);
      } finally {
        await tearDown(b);
      }
    });

    it('a deletion removes the row and its files; with backupdeleted they go to Deleted, and the oldest beyond it goes files and all', async () => {
      const b = await setUp(['a', 'b', 'c', 'd']);
      try {
        await b.m.store.remove({ ref: b.ref }, id(b, 'b'), 'INBOX');
        await expectFolder(b, 'INBOX', ['a', 'c', 'd']);
        await b.m.store.remove({ ref: b.ref, backupDeleted: 2 }, id(b, 'a'), 'INBOX');
        await b.m.store.remove({ ref: b.ref, backupDeleted: 2 }, id(b, 'c'), 'INBOX');
        await expectFolder(b, 'Deleted', ['a', 'c']);
        await b.m.store.remove({ ref: b.ref, backupDeleted: 2 }, id(b, 'd'), 'INBOX');
        await expectFolder(b, 'Deleted', ['c', 'd']);
        await expectFolder(b, 'INBOX', []);
        await expectReadable(b, b.m.store, { INBOX: [] });
      } finally {
        await tearDown(b);
      }
    });

    it('renumbering a folder with a gap moves each row\'s files down with it', async () => {
      const b = await setUp(['a', 'b', 'c', 'd']);
      try {
        await b.m.asterisk.removeOnly(b.ref, 'INBOX', 1);
        await b.m.asterisk.removeOnly(b.ref, 'INBOX', 0);
        b.ids.delete('a');
        const changes = await b.m.store.renumber(b.ref, 'INBOX');
        assert.equal(changes.length, 2, changes.join('\n'));
        await expectFolder(b, 'INBOX', ['c', 'd']);
        await expectReadable(b, b.m.store, { INBOX: ['c', 'd'] });
        assert.deepEqual(await b.m.store.renumber(b.ref, 'INBOX'), [], 'a dense folder is left alone');
      } finally {
        await tearDown(b);
      }
    });

    it('a move stopped after its files were linked, its transaction rolled back: the message is whole where it was, and the next run completes the move', async () => {
      const b = await setUp(['a', 'b', 'c']);
      const broken = new OdbcStore(b.m.opts, interruptOnce(database().url, /^INSERT INTO/, 'before commit'));
      try {
        await assert.rejects(broken.move({ ref: b.ref }, id(b, 'a'), 'INBOX', 'Old'), Interrupted);
        assert.deepEqual(await b.m.asterisk.folder(b.ref, 'Old'), [], 'no row went to Old');
        await expectReadable(b, b.m.store, { INBOX: ['a', 'b', 'c'], Old: [] });
        const out = await b.m.store.move({ ref: b.ref }, id(b, 'a'), 'INBOX', 'Old');
        assert.deepEqual({ done: out.done, alreadyDone: out.done && out.alreadyDone }, { done: true, alreadyDone: false });
        assert.ok(out.done && out.repairs.some((r) => /Old\/msg0000\.\w+: removed a second name/.test(r)), `the names left in Old are named: ${out.done && out.repairs.join('; ')}`);
        await expectFolder(b, 'INBOX', ['b', 'c']);
        await expectFolder(b, 'Old', ['a']);
      } finally {
        await broken.close();
        await tearDown(b);
      }
    });

    it('a move stopped right after its commit: the message is whole where it went, the others where they were, and the next run renumbers and tidies', async () => {
      const b = await setUp(['a', 'b', 'c']);
      const broken = new OdbcStore(b.m.opts, interruptOnce(database().url, /^INSERT INTO/, 'after commit'));
      try {
        await assert.rejects(broken.move({ ref: b.ref }, id(b, 'a'), 'INBOX', 'Old'), Interrupted);
        assert.deepEqual((await b.m.asterisk.folder(b.ref, 'INBOX')).map((r) => r.msgnum), [1, 2], 'INBOX has its gap still');
        await expectReadable(b, b.m.store, { INBOX: ['b', 'c'], Old: ['a'] });
        const out = await b.m.store.move({ ref: b.ref }, id(b, 'a'), 'INBOX', 'Old');
        assert.deepEqual({ done: out.done, alreadyDone: out.done && out.alreadyDone }, { done: true, alreadyDone: true });
        await expectFolder(b, 'INBOX', ['b', 'c']);
        await expectFolder(b, 'Old', ['a']);

        // The last message: no renumbering takes its old number, only the tidying removes the names.
        const again = new OdbcStore(b.m.opts, interruptOnce(database().url, /^INSERT INTO/, 'after commit'));
        try {
          await assert.rejects(again.move({ ref: b.ref }, id(b, 'c'), 'INBOX', 'Old'), Interrupted);
        } finally {
          await again.close();
        }
        assert.ok((await b.m.asterisk.files(b.ref, 'INBOX')).has('msg0001.wav'), 'the old names are still there');
        const done = await b.m.store.move({ ref: b.ref }, id(b, 'c'), 'INBOX', 'Old');
        assert.ok(done.done && done.repairs.some((r) => /INBOX\/msg0001\.wav: removed a second name/.test(r)), done.done ? done.repairs.join('; ') : done.problem);
        await expectFolder(b, 'INBOX', ['b']);
        await expectFolder(b, 'Old', ['a', 'c']);
      } finally {
        await broken.close();
        await tearDown(b);
      }
    });

    it('a renumbering step rolled back, or a deletion stopped after its commit: every message stays whole, and the next change completes the work', async () => {
      const b = await setUp(['a', 'b', 'c', 'd']);
      const renumbering = new OdbcStore(b.m.opts, interruptOnce(database().url, /^UPDATE/, 'before commit'));
      const deleting = new OdbcStore(b.m.opts, interruptOnce(database().url, /^DELETE FROM/, 'after commit'));
      try {
        await b.m.asterisk.removeOnly(b.ref, 'INBOX', 0);
        b.ids.delete('a');
        await assert.rejects(renumbering.renumber(b.ref, 'INBOX'), Interrupted);
        await expectReadable(b, b.m.store, { INBOX: ['b', 'c', 'd'] });
        await b.m.store.renumber(b.ref, 'INBOX');
        await expectFolder(b, 'INBOX', ['b', 'c', 'd']);

        await assert.rejects(deleting.remove({ ref: b.ref }, id(b, 'b'), 'INBOX'), Interrupted);
        const left = [...(await b.m.asterisk.files(b.ref, 'INBOX')).keys()];
        assert.ok(left.includes('msg0000.wav') && left.some((f) => f.startsWith('.vmbridge-deleted-')), `the deleted row's names are still there: ${left.join(', ')}`);
        await expectReadable(b, b.m.store, { INBOX: ['c', 'd'] });
        const out = await b.m.store.remove({ ref: b.ref }, id(b, 'b'), 'INBOX');
        assert.deepEqual({ done: out.done, alreadyDone: out.done && out.alreadyDone }, { done: true, alreadyDone: true });
        b.ids.delete('b');
        await expectFolder(b, 'INBOX', ['c', 'd']);
      } finally {
        await renumbering.close();
        await deleting.close();
        await tearDown(b);
      }
    });

    it('reads every format\'s file of each AUDMAGIC row; a row with a link among its files, or in a folder that is a link, is left alone', async () => {
      const b = await setUp(['a', 'b']);
      const outside = await mkdtemp(join(tmpdir(), 'vmbridge-outside-'));
      try {
        await expectReadable(b, b.m.store, { INBOX: ['a', 'b'] });
        const inbox = b.m.asterisk.localDir(b.ref, 'INBOX');
        await writeFile(join(outside, 'secret.wav'), 'not voicemail');
        await unlink(join(inbox, 'msg0001.WAV'));
        await symlink(join(outside, 'secret.wav'), join(inbox, 'msg0001.WAV'));
        const s = await b.m.store.readMailbox(b.ref);
        assert.deepEqual(s.messages.map((x) => x.id), [id(b, 'a')]);
        assert.ok(s.problems.some((p) => p.path.includes('msgnum=1') && /msg0001\.WAV is a symbolic link/.test(p.problem)), JSON.stringify(s.problems));
        await assert.rejects(b.m.store.readAudio(b.ref, join(ASTERISK_SPOOL, 'voicemail', b.ref.context, b.ref.mailbox, 'INBOX', 'msg0001.WAV')), (err: unknown) => err instanceof UnsafeSpoolEntryError && err.path === join(inbox, 'msg0001.WAV'));

        await b.m.asterisk.move(b.ref, 'INBOX', 0, 'Work');
        await rm(b.m.asterisk.localDir(b.ref, 'Work'), { recursive: true });
        await mkdir(join(outside, 'Work'));
        await writeFile(join(outside, 'Work', 'msg0000.wav'), wavOf('elsewhere'));
        await symlink(join(outside, 'Work'), b.m.asterisk.localDir(b.ref, 'Work'));
        const w = await b.m.store.readMailbox(b.ref);
        assert.equal(w.messages.some((x) => x.id === id(b, 'a')), false, 'nothing is read through the link');
        assert.ok(w.problems.some((p) => /Work: is a symbolic link/.test(p.problem)), JSON.stringify(w.problems));
      } finally {
        await rm(outside, { recursive: true, force: true });
        await tearDown(b);
      }
    });

    it('an audio file is never read as another message\'s when Asterisk renumbers the folder meanwhile', async () => {
      const b = await setUp(['a', 'b']);
      const racing = new OdbcStore(b.m.opts, afterQuery(database().url, /^SELECT recording/, () => b.m.asterisk.remove(b.ref, 'INBOX', 0)));
      try {
        const a = (await racing.readMailbox(b.ref)).messages.find((x) => x.id === id(b, 'a'))!;
        const wav = a.audio.find((x) => x.ext === 'wav')!;
        // Between the look at a's row and the opening of its file, a goes and b takes its number.
        await assert.rejects(racing.readAudio(b.ref, wav.path), (err: unknown) => err instanceof OdbcRowError && /msgnum=0\).*renumbered while its audio was read/.test(err.message));
        b.ids.delete('a');
        await expectReadable(b, racing, { INBOX: ['b'] });
      } finally {
        await racing.close();
        await tearDown(b);
      }
    });

    it('audio of no message in the way is kept in tmp/; a link among a row\'s files or in place of a folder is refused, naming it, and nothing changes', async () => {
      const b = await setUp(['a', 'b']);
      const outside = await mkdtemp(join(tmpdir(), 'vmbridge-outside-'));
      try {
        // Audio Asterisk wrote where its row then failed to be stored.
        await mkdir(b.m.asterisk.localDir(b.ref, 'Old'), { recursive: true });
        await writeFile(join(b.m.asterisk.localDir(b.ref, 'Old'), 'msg0000.wav'), 'orphan');
        await b.m.store.move({ ref: b.ref }, id(b, 'a'), 'INBOX', 'Old');
        await expectFolder(b, 'Old', ['a']);
        const tmp = b.m.asterisk.localDir(b.ref, 'tmp');
        const kept = (await readdir(tmp)).filter((f) => f.startsWith('vmbridge-orphan-Old-msg0000-'));
        assert.equal(kept.length, 1, 'kept once');
        assert.equal(await readFile(join(tmp, kept[0]!), 'utf8'), 'orphan');

        // A row whose file is a link out of the spool.
        const secret = join(outside, 'secret.wav');
        await writeFile(secret, 'not voicemail');
        const inbox = b.m.asterisk.localDir(b.ref, 'INBOX');
        await unlink(join(inbox, 'msg0000.gsm'));
        await symlink(secret, join(inbox, 'msg0000.gsm'));
        const s = await b.m.store.readMailbox(b.ref);
        assert.ok(s.problems.some((p) => p.path.includes('msgnum=0') && /msg0000\.gsm is a symbolic link/.test(p.problem)), JSON.stringify(s.problems));
        assert.equal(s.messages.some((x) => x.id === id(b, 'b')), false, 'that message is left alone');
        await assert.rejects(b.m.store.move({ ref: b.ref }, id(b, 'b'), 'INBOX', 'Work'), (err: unknown) => err instanceof UnsafeSpoolEntryError && err.path === join(inbox, 'msg0000.gsm'));
        assert.deepEqual(await b.m.asterisk.folder(b.ref, 'INBOX'), [{ msgnum: 0, msgId: id(b, 'b') }]);
        assert.deepEqual(await b.m.asterisk.files(b.ref, 'Work'), new Map(), 'nothing was linked into Work');
        assert.equal(await readFile(secret, 'utf8'), 'not voicemail');

        // A folder that is a link out of the spool.
        await symlink(outside, b.m.asterisk.localDir(b.ref, 'Family'));
        await assert.rejects(b.m.store.move({ ref: b.ref }, id(b, 'a'), 'Old', 'Family'), (err: unknown) => err instanceof UnsafeSpoolEntryError && err.path === b.m.asterisk.localDir(b.ref, 'Family'));
        await expectFolder(b, 'Old', ['a']);
        assert.deepEqual(await readdir(outside), ['secret.wav']);
      } finally {
        await rm(outside, { recursive: true, force: true });
        await tearDown(b);
      }
    });

    it('the folders it creates belong to Asterisk\'s user, and the files it moves keep their owner', { skip: process.geteuid?.() === 0 ? false : 'chown to another user needs root' }, async () => {
      const nobody = { uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim()), gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim()) };
      const b = await setUp(['a'], { ownership: nobody });
      try {
        const inbox = b.m.asterisk.localDir(b.ref, 'INBOX');
        for (const name of await readdir(inbox)) await chown(join(inbox, name), nobody.uid, nobody.gid);
        await b.m.store.remove({ ref: b.ref, backupDeleted: 3 }, id(b, 'a'), 'INBOX');
        const deleted = b.m.asterisk.localDir(b.ref, 'Deleted');
        const st = await stat(deleted);
        assert.deepEqual({ uid: st.uid, gid: st.gid }, nobody, 'Deleted');
        for (const ext of FORMATS) {
          const f = await stat(join(deleted, `msg0000.${ext}`));
          assert.deepEqual({ uid: f.uid, gid: f.gid }, nobody, ext);
        }
      } finally {
        await tearDown(b);
      }
    });
  });
}

const servers: { name: string; start: () => Promise<DatabaseServer> }[] = [
  { name: 'PostgreSQL', start: startPostgres },
  { name: 'MariaDB', start: startMariadb },
];

for (const server of servers) {
  describe(`ODBC voicemail table on ${server.name}`, () => {
    let db: DatabaseServer;
    before(async () => {
      db = await server.start();
    });
    after(async () => {
      await db?.stop();
    });

    for (const revision of ['current', 'with-macrocontext'] as const) {
      storeContract(`${server.name} table (${revision} schema)`, async () => {
        const m = await makeStore(db, { revision });
        return {
          store: m.store,
          async leave(ref, opts) {
            return (await m.asterisk.leave(ref, { audio: opts.audio, ...(opts.urgent ? { urgent: true } : {}) })).msgId;
          },
          async asteriskMove(ref, from, msgnum, to) {
            await m.asterisk.move(ref, from, msgnum, to);
          },
          leaveGap: (ref, folder, msgnum) => m.asterisk.removeOnly(ref, folder, msgnum),
          close: () => m.close(),
        };
      });
    }

    storeContract(`${server.name} table with the audio on disk (odbc_audio_on_disk=yes, wav and gsm)`, async () => {
      const m = await makeStore(db, { audioOnDisk: ['wav', 'gsm'] });
      return {
        store: m.store,
        async leave(ref, opts) {
          return (await m.asterisk.leave(ref, { audio: opts.audio, ...(opts.urgent ? { urgent: true } : {}) })).msgId;
        },
        async asteriskMove(ref, from, msgnum, to) {
          await m.asterisk.move(ref, from, msgnum, to);
        },
        leaveGap: (ref, folder, msgnum) => m.asterisk.removeOnly(ref, folder, msgnum),
        close: () => m.close(),
      };
    });

    audioOnDiskTests(server.name, () => db);

    it('keeps msgnum dense and Asterisk-shaped after vmbridge moves and removes (no duplicate numbers)', async () => {
      const m = await makeStore(db);
      try {
        const ref = { context: 'default', mailbox: '1000' };
        const ids = [];
        for (let i = 0; i < 4; i++) ids.push((await m.asterisk.leave(ref, { audio: wavOf(`m${i}`) })).msgId);
        await m.store.move({ ref }, ids[1]!, 'INBOX', 'Work');
        await m.store.remove({ ref }, ids[0]!, 'INBOX');
        await m.store.move({ ref }, ids[3]!, 'INBOX', 'Work');
        assert.deepEqual(await m.asterisk.folder(ref, 'INBOX'), [{ msgnum: 0, msgId: ids[2] }]);
        assert.deepEqual(await m.asterisk.folder(ref, 'Work'), [{ msgnum: 0, msgId: ids[1] }, { msgnum: 1, msgId: ids[3] }]);
        // And Asterisk's own next message lands after them.
        const next = await m.asterisk.leave(ref, { audio: wavOf('new') });
        assert.equal(next.msgnum, 1);
      } finally {
        await m.store.close();
        await m.close();
      }
    });

    it('refuses a table that lacks app_voicemail columns, naming them', async () => {
      const m = await makeStore(db, { create: false });
      try {
        const table = (m.store.location.split(' table ')[1])!;
        await m.asterisk.db.query(`CREATE TABLE ${table} (dir VARCHAR(255) NOT NULL, msgnum INTEGER NOT NULL, recording ${db.kind === 'postgres' ? 'BYTEA' : 'LONGBLOB'})`);
        await assert.rejects(m.store.readMailbox({ context: 'default', mailbox: '1000' }), (err: unknown) => {
          assert.ok(err instanceof OdbcTableError, String(err));
          assert.match(err.message, new RegExp(`${table}: lacks the columns context, callerid, origtime, duration, flag, mailboxuser, mailboxcontext, msg_id`));
          return true;
        });
      } finally {
        await m.store.close();
        await m.close();
      }
    });

    it('names a row whose dir is outside the spool, and a recording that is not audio; the other messages are read', async () => {
      const m = await makeStore(db);
      try {
        const ref = { context: 'default', mailbox: '1001' };
        const good = await m.asterisk.leave(ref, { audio: wavOf('good') });
        const bad = await m.asterisk.leave(ref, { audio: wavOf('x'), recording: Buffer.from('this is not audio at all') });
        const table = (m.store.location.split(' table ')[1])!;
        await m.asterisk.db.query(`INSERT INTO ${table} (dir, msgnum, recording, msg_id) VALUES (?, 0, ?, ?)`, ['/elsewhere/voicemail/default/1001/INBOX', wavOf('stray'), '1-deadbeef']);
        const listed = await m.store.listMailboxes();
        assert.ok(listed.problems.some((p) => p.path.includes('/elsewhere/voicemail/default/1001/INBOX') && /not under \/var\/spool\/asterisk\/voicemail\//.test(p.problem)), JSON.stringify(listed.problems));
        const s = await m.store.readMailbox(ref);
        assert.deepEqual(s.messages.map((x) => x.id).sort(), [good.msgId, bad.msgId].sort(), 'both rows are messages: the bad one is left alone, not taken as deleted');
        const goodMsg = s.messages.find((x) => x.id === good.msgId)!;
        assert.equal((await m.store.readAudio(ref, goodMsg.audio[0]!.path)).subarray(44).toString(), 'good');
        const badMsg = s.messages.find((x) => x.id === bad.msgId)!;
        await assert.rejects(m.store.readAudio(ref, badMsg.audio[0]!.path), (err: unknown) => {
          assert.ok(err instanceof OdbcRowError);
          assert.match(err.message, new RegExp(`${table} row \\(dir="/var/spool/asterisk/voicemail/default/1001/INBOX", msgnum=1\\).*not a WAV file`));
          return true;
        });
      } finally {
        await m.store.close();
        await m.close();
      }
    });

    it('reads the envelope Asterisk would write from the row (callerid, origtime, duration, flag, msg_id)', async () => {
      const m = await makeStore(db, { revision: 'with-macrocontext' });
      try {
        const ref = { context: 'default', mailbox: '1002' };
        const left = await m.asterisk.leave(ref, { audio: wavOf('u'), urgent: true, callerid: '"Bob \'Robert\' O\'Neil" <2002>', duration: 7, origtime: 1796600000 });
        const [msg] = (await m.store.readMailbox(ref)).messages;
        assert.ok(msg);
        assert.equal(msg.folder, 'Urgent');
        assert.equal(msg.id, left.msgId);
        assert.equal(msg.envelope.callerid, '"Bob \'Robert\' O\'Neil" <2002>');
        assert.equal(msg.envelope.origtime, 1796600000);
        assert.equal(msg.envelope.duration, 7);
        assert.equal(msg.envelope.flag, 'Urgent');
        assert.equal(msg.envelope.origmailbox, '1002');
        assert.equal(msg.txtPath, '/var/spool/asterisk/voicemail/default/1002/Urgent/msg0000.txt');
      } finally {
        await m.store.close();
        await m.close();
      }
    });

    it('the spool folders it creates for Asterisk\'s folder lock belong to Asterisk\'s user', { skip: process.geteuid?.() === 0 ? false : 'chown to another user needs root' }, async () => {
      const nobody = { uid: Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim()), gid: Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim()) };
      const m = await makeStore(db, { ownership: nobody });
      try {
        const ref = { context: 'owned', mailbox: '1009' };
        await m.store.withFolderLock(ref, 'Work', () => undefined);
        for (const d of ['owned', 'owned/1009', 'owned/1009/Work']) {
          const st = await stat(join(m.local, 'voicemail', d));
          assert.deepEqual({ uid: st.uid, gid: st.gid }, nobody, d);
        }
      } finally {
        await m.store.close();
        await m.close();
      }
    });

    if (server.name === 'PostgreSQL') {
      it('hears Asterisk\'s row changes through the trigger\'s notices, with no periodic look', async () => {
        const m = await makeStore(db, { trigger: true, pollSeconds: 0 });
        const seen: string[] = [];
        const watcher = m.store.watch((r) => seen.push(`${r.mailbox}@${r.context}`));
        try {
          await watcher.ready;
          const ref = { context: 'default', mailbox: '1003' };
          await m.asterisk.leave(ref, { audio: wavOf('n') });
          await waitFor('a notice for 1003@default', () => seen.includes('1003@default'));
        } finally {
          watcher.close();
          await m.store.close();
          await m.close();
        }
      });
    }
  });
}

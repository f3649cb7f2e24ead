/**
 * Asterisk's ODBC voicemail table as a store, against real PostgreSQL and MariaDB from Debian:
 * the store contract (the same tests the file spool passes), the PostgreSQL trigger's notices, old
 * tables with macrocontext, bad input named by table, row or column, and the audio files of
 * odbc_audio_on_disk=yes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
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
  describe(`odbc_audio_on_disk=yes on ${serverName}: audio files in the spool folder (${FORMATS.join(', ')})`, () => {
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

    /** What the store reads: every message with every format, each file its own. */
    const expectReadable = async (b: Box, store: OdbcStore, want: Record<string, readonly string[]>): Promise<void> => {
      const s = await store.readMailbox(b.ref);
      assert.deepEqual(s.problems, []);
      for (const [folder, labels] of Object.entries(want)) {
        const msgs = s.messages.filter((x) => x.folder === folder).sort((x, y) => x.msgnum - y.msgnum);
        assert.deepEqual(msgs.map((x) => x.id), labels.map((l) => id(b, l)), `${folder} as read`);
        for (const [i, msg] of msgs.entries()) {
          assert.deepEqual(msg.audio.map((a) => a.ext).sort(), [...FORMATS].sort(), `${folder} message ${i} has every format`);
          for (const a of msg.audio) assert.equal((await store.readAudio(a.path)).subarray(44).toString(), `${labels[i]}.${a.ext}`, a.path);
        }
      }
    };

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
        await assert.rejects(b.m.store.readAudio(join(ASTERISK_SPOOL, 'voicemail', b.ref.context, b.ref.mailbox, 'INBOX', 'msg0001.WAV')), (err: unknown) => err instanceof UnsafeSpoolEntryError && err.path === join(inbox, 'msg0001.WAV'));

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
        await assert.rejects(racing.readAudio(wav.path), (err: unknown) => err instanceof OdbcRowError && /msgnum=0\).*renumbered while its audio was read/.test(err.message));
        b.ids.delete('a');
        await expectReadable(b, racing, { INBOX: ['b'] });
      } finally {
        await racing.close();
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
        assert.equal((await m.store.readAudio(goodMsg.audio[0]!.path)).subarray(44).toString(), 'good');
        const badMsg = s.messages.find((x) => x.id === bad.msgId)!;
        await assert.rejects(m.store.readAudio(badMsg.audio[0]!.path), (err: unknown) => {
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

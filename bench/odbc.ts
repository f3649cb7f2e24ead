/**
 * Asterisk's ODBC voicemail table at the scale of a site (BENCH_ODBC_MAILBOXES mailboxes, default
 * 5,000, five messages each), on PostgreSQL and MariaDB from Debian, each figure beside a floor
 * measured in the same run on the same server:
 *
 *   read one mailbox   OdbcStore.readMailbox (the envelope columns of the six synced folders)
 *                      beside a bare `SELECT dir, msgnum ... WHERE dir IN (...)` of the same rows
 *   look for changes   the per-folder fingerprint over the whole table (what every
 *                      spool.odbc.pollSeconds costs) beside `SELECT COUNT(*)` of the table
 *   read a recording   OdbcStore.readAudio of one 8 KB recording beside a bare SELECT of it
 *
 * `node --import tsx bench/odbc.ts` writes bench/results/odbc.json and odbc.md.
 */
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { OdbcStore } from '../src/store/odbc/odbc-store.js';
import { openDatabase, type SqlDatabase } from '../src/store/odbc/sql.js';
import { fingerprintSql } from '../src/store/odbc/watch.js';
import { SYNCED_SPOOL_FOLDERS } from '../src/spool/types.js';
import { asteriskSchema } from '../test/support/asterisk-odbc.js';
import { startMariadb, startPostgres, type DatabaseServer } from '../test/support/databases.js';
import { wavOf } from '../test/support/store-contract.js';

const ROOT = resolve(import.meta.dirname, '..');
const MAILBOXES = Number(process.env.BENCH_ODBC_MAILBOXES ?? 5_000);
const PER_BOX = 5;
const SAMPLES = Number(process.env.BENCH_ODBC_SAMPLES ?? 200);
const SPOOL = '/var/spool/asterisk';
const TABLE = 'voicemessages';

interface Stats { p50: number; p95: number; max: number }
function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 100) / 100;
  return { p50: at(0.5), p95: at(0.95), max: at(1) };
}
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}
const dir = (i: number, folder = 'INBOX'): string => `${SPOOL}/voicemail/default/${10000 + i}/${folder}`;

async function fill(db: SqlDatabase): Promise<void> {
  for (const sql of asteriskSchema(db.dialect, TABLE)) await db.query(sql);
  const audio = wavOf('x'.repeat(8_000));
  const batch = 200;
  for (let start = 0; start < MAILBOXES; start += batch) {
    const values: unknown[] = [];
    const rows: string[] = [];
    for (let i = start; i < Math.min(MAILBOXES, start + batch); i++) {
      for (let n = 0; n < PER_BOX; n++) {
        const folder = n < 3 ? 'INBOX' : 'Old';
        const msgnum = n < 3 ? n : n - 3;
        rows.push('(?,?,?,?,?,?,?,?,?,?,?)');
        values.push(dir(i, folder), msgnum, audio, 'from-pstn', '"Caller" <5550100>', String(1796600000 + n), '7', String(10000 + i), 'default', '', `${1796600000 + i}-${(n + 0x10000000).toString(16)}`);
      }
    }
    await db.query(`INSERT INTO ${TABLE} (dir,msgnum,recording,context,callerid,origtime,duration,mailboxuser,mailboxcontext,flag,msg_id) VALUES ${rows.join(',')}`, values);
  }
}

async function measure(server: DatabaseServer): Promise<Record<string, unknown>> {
  const db = openDatabase(server.url, 'bench');
  try {
    await fill(db);
    const store = new OdbcStore({ url: server.url, urlSetting: 'bench', table: TABLE, asteriskSpoolDir: SPOOL, localSpoolDir: '/tmp', lockmode: 'lockfile', recordingExt: 'wav', audioOnDisk: false, pollSeconds: 0 });
    try {
      await store.check();
      const pick = (k: number): number => (k * 7919) % MAILBOXES;
      const readStore: number[] = [];
      const readFloor: number[] = [];
      const audioStore: number[] = [];
      const audioFloor: number[] = [];
      for (let k = 0; k < SAMPLES; k++) {
        const i = pick(k);
        const ref = { context: 'default', mailbox: String(10000 + i) };
        const dirs = SYNCED_SPOOL_FOLDERS.map((f) => dir(i, f));
        readFloor.push(await timed(() => db.query(`SELECT dir, msgnum FROM ${TABLE} WHERE dir IN (${dirs.map(() => '?').join(',')})`, dirs)));
        let path = '';
        readStore.push(await timed(async () => {
          const s = await store.readMailbox(ref);
          path = s.messages[0]!.audio[0]!.path;
        }));
        audioFloor.push(await timed(() => db.query(`SELECT recording FROM ${TABLE} WHERE dir = ? AND msgnum = 0`, [dir(i)])));
        audioStore.push(await timed(() => store.readAudio(ref, path)));
      }
      const lookStore: number[] = [];
      const lookFloor: number[] = [];
      for (let k = 0; k < 10; k++) {
        lookFloor.push(await timed(() => db.query(`SELECT COUNT(*) AS n FROM ${TABLE}`)));
        lookStore.push(await timed(() => db.query(fingerprintSql(db, TABLE))));
      }
      return {
        server: server.kind,
        rows: MAILBOXES * PER_BOX,
        readMailbox: { floor: stats(readFloor), store: stats(readStore) },
        readAudio: { floor: stats(audioFloor), store: stats(audioStore) },
        changeLook: { floor: stats(lookFloor), store: stats(lookStore) },
      };
    } finally {
      await store.close();
    }
  } finally {
    await db.close();
  }
}

async function main(): Promise<void> {
  const results: Record<string, unknown>[] = [];
  for (const start of [startPostgres, startMariadb]) {
    const server = await start();
    try {
      results.push(await measure(server));
    } finally {
      await server.stop();
    }
  }
  const at = new Date().toISOString();
  await writeFile(join(ROOT, 'bench/results/odbc.json'), `${JSON.stringify({ at, mailboxes: MAILBOXES, perMailbox: PER_BOX, samples: SAMPLES, results }, null, 2)}\n`);
  const f = (s: Stats): string => `${s.p50} (p95 ${s.p95})`;
  const lines = [
    `ODBC voicemail table, ${MAILBOXES} mailboxes x ${PER_BOX} messages, ${SAMPLES} samples (ms, p50 and p95), ${at}`,
    '',
    '| server | rows | read one mailbox: floor | OdbcStore.readMailbox | read a recording: floor | OdbcStore.readAudio | look for changes: floor (COUNT) | fingerprint of every folder |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...results.map((r) => {
      const x = r as { server: string; rows: number; readMailbox: { floor: Stats; store: Stats }; readAudio: { floor: Stats; store: Stats }; changeLook: { floor: Stats; store: Stats } };
      return `| ${x.server} | ${x.rows} | ${f(x.readMailbox.floor)} | ${f(x.readMailbox.store)} | ${f(x.readAudio.floor)} | ${f(x.readAudio.store)} | ${f(x.changeLook.floor)} | ${f(x.changeLook.store)} |`;
    }),
  ];
  await writeFile(join(ROOT, 'bench/results/odbc.md'), `${lines.join('\n')}\n`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();

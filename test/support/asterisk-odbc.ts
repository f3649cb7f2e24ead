/**
 * Asterisk's ODBC voicemail table, for tests: created as Asterisk's alembic schema scripts create
 * it (contrib/ast-db-manage, voicemail branch: the first revision with macrocontext, its later
 * revisions without it and without the dir index), and rows written, copied, renumbered and
 * deleted the way app_voicemail's ODBC storage does (store_file, COPY, RENAME, DELETE).
 */
import { randomBytes } from 'node:crypto';
import { openDatabase, type SqlDatabase } from '../../src/store/odbc/sql.js';
import type { MailboxRef, SyncedSpoolFolder } from '../../src/spool/types.js';

export type SchemaRevision = 'current' | 'with-macrocontext';

/** CREATE TABLE as the alembic scripts leave it, for `table` (Asterisk's default name: voicemail_messages). */
export function asteriskSchema(dialect: 'postgres' | 'mysql', table: string, revision: SchemaRevision = 'current'): string[] {
  const blob = dialect === 'postgres' ? 'BYTEA' : 'LONGBLOB';
  const macro = revision === 'with-macrocontext' ? ['macrocontext VARCHAR(80)'] : [];
  const columns = [
    'dir VARCHAR(255) NOT NULL',
    'msgnum INTEGER NOT NULL',
    'context VARCHAR(80)',
    ...macro,
    'callerid VARCHAR(80)',
    'origtime INTEGER',
    'duration INTEGER',
    `recording ${blob}`,
    'flag VARCHAR(30)',
    'category VARCHAR(30)',
    'mailboxuser VARCHAR(30)',
    'mailboxcontext VARCHAR(30)',
    'msg_id VARCHAR(40)',
  ];
  const out = [`CREATE TABLE ${table} (${columns.join(', ')})`, `ALTER TABLE ${table} ADD CONSTRAINT ${table}_dir_msgnum PRIMARY KEY (dir, msgnum)`];
  if (revision === 'with-macrocontext') out.push(`CREATE INDEX ${table}_dir ON ${table} (dir)`);
  return out;
}

export interface AsteriskOdbcOptions {
  readonly url: string;
  readonly table: string;
  /** The Asterisk server's astspooldir, as it writes it into `dir`. */
  readonly spoolDir: string;
  readonly revision?: SchemaRevision;
}

/** What app_voicemail does to the table, statement by statement. */
export class AsteriskOdbc {
  readonly db: SqlDatabase;

  constructor(private readonly opts: AsteriskOdbcOptions) {
    this.db = openDatabase(opts.url, 'test database');
  }

  async createTable(): Promise<void> {
    for (const sql of asteriskSchema(this.db.dialect, this.opts.table, this.opts.revision)) await this.db.query(sql);
  }

  dir(ref: MailboxRef, folder: string): string {
    return `${this.opts.spoolDir}/voicemail/${ref.context}/${ref.mailbox}/${folder}`;
  }

  private async last(dir: string): Promise<number> {
    const rows = await this.db.query(`SELECT MAX(msgnum) AS m FROM ${this.opts.table} WHERE dir = ?`, [dir]);
    const m = rows[0]?.['m'];
    return m === null || m === undefined ? -1 : Number(m);
  }

  /** store_file after a recording: one INSERT with the first format's audio. Returns the msg_id. */
  async leave(ref: MailboxRef, opts: { audio: Buffer; urgent?: boolean; callerid?: string; duration?: number; origtime?: number; msgId?: string | null; recording?: Buffer }): Promise<{ msgId: string; msgnum: number }> {
    const folder = opts.urgent ? 'Urgent' : 'INBOX';
    const dir = this.dir(ref, folder);
    const origtime = opts.origtime ?? Math.floor(Date.now() / 1000);
    const msgId = opts.msgId === null ? null : (opts.msgId ?? `${origtime}-${randomBytes(4).toString('hex')}`);
    const msgnum = (await this.last(dir)) + 1;
    const macro = this.opts.revision === 'with-macrocontext';
    const cols = ['dir', 'msgnum', 'recording', 'context', ...(macro ? ['macrocontext'] : []), 'callerid', 'origtime', 'duration', 'mailboxuser', 'mailboxcontext', 'flag', 'msg_id'];
    const values: unknown[] = [dir, msgnum, opts.recording ?? opts.audio, 'vm-leave', ...(macro ? [''] : []), opts.callerid ?? '"Alice" <2001>', String(origtime), String(opts.duration ?? 3), ref.mailbox, ref.context, opts.urgent ? 'Urgent' : '', msgId];
    await this.db.query(`INSERT INTO ${this.opts.table} (${cols.join(',')}) VALUES (${cols.map(() => '?').join(',')})`, values);
    return { msgId: msgId ?? '', msgnum };
  }

  /** VoiceMailMain saving to a folder: COPY to the end of `to`, DELETE, then RENAME to close the gap. */
  async move(ref: MailboxRef, from: SyncedSpoolFolder, msgnum: number, to: SyncedSpoolFolder): Promise<number> {
    const src = this.dir(ref, from);
    const dst = this.dir(ref, to);
    const next = (await this.last(dst)) + 1;
    const macro = this.opts.revision === 'with-macrocontext' ? ', macrocontext' : '';
    const cols = `msg_id, context${macro}, callerid, origtime, duration, recording, flag, mailboxuser, mailboxcontext`;
    await this.db.query(`INSERT INTO ${this.opts.table} (dir, msgnum, ${cols}) SELECT ?, ?, ${cols} FROM ${this.opts.table} WHERE dir = ? AND msgnum = ?`, [dst, next, src, msgnum]);
    await this.db.query(`DELETE FROM ${this.opts.table} WHERE dir = ? AND msgnum = ?`, [src, msgnum]);
    await this.resequence(src);
    return next;
  }

  /** Deleting one message: DELETE, then RENAME the rest down. */
  async remove(ref: MailboxRef, folder: SyncedSpoolFolder, msgnum: number): Promise<void> {
    const dir = this.dir(ref, folder);
    await this.db.query(`DELETE FROM ${this.opts.table} WHERE dir = ? AND msgnum = ?`, [dir, msgnum]);
    await this.resequence(dir);
  }

  /** DELETE without the renumbering, as an interrupted session leaves a folder. */
  async removeOnly(ref: MailboxRef, folder: SyncedSpoolFolder, msgnum: number): Promise<void> {
    await this.db.query(`DELETE FROM ${this.opts.table} WHERE dir = ? AND msgnum = ?`, [this.dir(ref, folder), msgnum]);
  }

  /** The RENAME pass on closing a folder: `UPDATE ... SET dir=?, msgnum=? WHERE dir=? AND msgnum=?`. */
  async resequence(dir: string): Promise<void> {
    const nums = (await this.db.query(`SELECT msgnum FROM ${this.opts.table} WHERE dir = ? ORDER BY msgnum`, [dir])).map((r) => Number(r['msgnum']));
    for (const [i, n] of nums.entries()) if (n !== i) await this.db.query(`UPDATE ${this.opts.table} SET dir = ?, msgnum = ? WHERE dir = ? AND msgnum = ?`, [dir, i, dir, n]);
  }

  /** The rows of a folder: msgnum and msg_id, in order. */
  async folder(ref: MailboxRef, folder: string): Promise<{ msgnum: number; msgId: string }[]> {
    return (await this.db.query(`SELECT msgnum, msg_id FROM ${this.opts.table} WHERE dir = ? ORDER BY msgnum`, [this.dir(ref, folder)])).map((r) => ({ msgnum: Number(r['msgnum']), msgId: String(r['msg_id'] ?? '') }));
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

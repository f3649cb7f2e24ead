/**
 * Asterisk's ODBC voicemail table, for tests: created as Asterisk's alembic schema scripts create
 * it (contrib/ast-db-manage, voicemail branch: the first revision with macrocontext, its later
 * revisions without it and without the dir index), and rows written, copied, renumbered and
 * deleted the way app_voicemail's ODBC storage does (store_file, COPY, RENAME, DELETE). With
 * `audioOnDisk` (voicemail.conf odbc_audio_on_disk=yes) the rows hold AUDMAGIC and every format's
 * file is in the spool folder; COPY copies the files, RENAME first deletes whatever is at its
 * destination (row and files) and then renames them, DELETE deletes them, each after its statement.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
  /** odbc_audio_on_disk=yes: the spool as the test sees it, and voicemail.conf's formats (wav49 as WAV). */
  readonly audioOnDisk?: { readonly spoolDir: string; readonly formats: readonly string[] };
}

export const AUDIO_ON_DISK_MARKER = Buffer.from('AUDMAGIC', 'latin1');

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

  /** The folder as the test sees it on disk (audio on disk only). */
  localDir(ref: MailboxRef, folder: string): string {
    if (!this.opts.audioOnDisk) throw new Error('this table keeps its audio in the rows');
    return join(this.opts.audioOnDisk.spoolDir, 'voicemail', ref.context, ref.mailbox, folder);
  }

  /**
   * store_file after a recording: one INSERT with the first format's audio, or, with the audio on
   * disk, every format's file renamed into the folder first and AUDMAGIC in the row (`files` gives
   * each format's bytes; by default every format gets `audio`). Returns the msg_id.
   */
  async leave(ref: MailboxRef, opts: { audio: Buffer; urgent?: boolean; callerid?: string; duration?: number; origtime?: number; msgId?: string | null; recording?: Buffer; files?: (ext: string) => Buffer }): Promise<{ msgId: string; msgnum: number }> {
    const folder = opts.urgent ? 'Urgent' : 'INBOX';
    const dir = this.dir(ref, folder);
    const origtime = opts.origtime ?? Math.floor(Date.now() / 1000);
    const msgId = opts.msgId === null ? null : (opts.msgId ?? `${origtime}-${randomBytes(4).toString('hex')}`);
    const msgnum = (await this.last(dir)) + 1;
    if (this.opts.audioOnDisk) await this.record(ref, folder, msgnum, opts.files ?? (() => opts.audio));
    const macro = this.opts.revision === 'with-macrocontext';
    const cols = ['dir', 'msgnum', 'recording', 'context', ...(macro ? ['macrocontext'] : []), 'callerid', 'origtime', 'duration', 'mailboxuser', 'mailboxcontext', 'flag', 'msg_id'];
    const recording = opts.recording ?? (this.opts.audioOnDisk ? AUDIO_ON_DISK_MARKER : opts.audio);
    const values: unknown[] = [dir, msgnum, recording, 'vm-leave', ...(macro ? [''] : []), opts.callerid ?? '"Alice" <2001>', String(origtime), String(opts.duration ?? 3), ref.mailbox, ref.context, opts.urgent ? 'Urgent' : '', msgId];
    await this.db.query(`INSERT INTO ${this.opts.table} (${cols.join(',')}) VALUES (${cols.map(() => '?').join(',')})`, values);
    return { msgId: msgId ?? '', msgnum };
  }

  /** leave_voicemail's recording: a temporary file per format in tmp/, renamed to msgNNNN.<ext>. */
  private async record(ref: MailboxRef, folder: string, msgnum: number, bytes: (ext: string) => Buffer): Promise<void> {
    const dir = this.localDir(ref, folder);
    const tmp = this.localDir(ref, 'tmp');
    await mkdir(dir, { recursive: true });
    await mkdir(tmp, { recursive: true });
    for (const ext of this.opts.audioOnDisk!.formats) {
      const t = join(tmp, `${randomBytes(3).toString('hex')}.${ext}`);
      await writeFile(t, bytes(ext));
      await rename(t, join(dir, fileName(msgnum, ext)));
    }
  }

  /** The audio files of a message as ast_filecopy/ast_filerename/ast_filedelete find them: every format present. */
  private async filesOf(ref: MailboxRef, folder: string, msgnum: number): Promise<string[]> {
    if (!this.opts.audioOnDisk) return [];
    const base = `msg${String(msgnum).padStart(4, '0')}.`;
    const names = await readdir(this.localDir(ref, folder)).catch(() => [] as string[]);
    return names.filter((n) => n.startsWith(base) && this.opts.audioOnDisk!.formats.includes(n.slice(base.length)));
  }

  private async copyFiles(ref: MailboxRef, from: string, n: number, to: string, m: number): Promise<void> {
    if (!this.opts.audioOnDisk) return;
    await mkdir(this.localDir(ref, to), { recursive: true });
    for (const name of await this.filesOf(ref, from, n)) await copyFile(join(this.localDir(ref, from), name), join(this.localDir(ref, to), fileName(m, extOf(name))));
  }

  private async deleteFiles(ref: MailboxRef, folder: string, n: number): Promise<void> {
    for (const name of await this.filesOf(ref, folder, n)) await unlink(join(this.localDir(ref, folder), name));
  }

  private async renameFiles(ref: MailboxRef, folder: string, n: number, m: number): Promise<void> {
    await this.deleteFiles(ref, folder, m);
    for (const name of await this.filesOf(ref, folder, n)) await rename(join(this.localDir(ref, folder), name), join(this.localDir(ref, folder), fileName(m, extOf(name))));
  }

  /** Every file of a folder on disk, by name, with its bytes (audio on disk only). */
  async files(ref: MailboxRef, folder: string): Promise<Map<string, Buffer>> {
    const dir = this.localDir(ref, folder);
    const out = new Map<string, Buffer>();
    for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) out.set(name, await readFile(join(dir, name)));
    return out;
  }

  /** VoiceMailMain saving to a folder: COPY to the end of `to`, DELETE, then RENAME to close the gap. */
  async move(ref: MailboxRef, from: SyncedSpoolFolder, msgnum: number, to: SyncedSpoolFolder): Promise<number> {
    const src = this.dir(ref, from);
    const dst = this.dir(ref, to);
    const next = (await this.last(dst)) + 1;
    const macro = this.opts.revision === 'with-macrocontext' ? ', macrocontext' : '';
    const cols = `msg_id, context${macro}, callerid, origtime, duration, recording, flag, mailboxuser, mailboxcontext`;
    await this.db.query(`INSERT INTO ${this.opts.table} (dir, msgnum, ${cols}) SELECT ?, ?, ${cols} FROM ${this.opts.table} WHERE dir = ? AND msgnum = ?`, [dst, next, src, msgnum]);
    await this.copyFiles(ref, from, msgnum, to, next);
    await this.removeOnly(ref, from, msgnum);
    await this.resequence(ref, from);
    return next;
  }

  /** Deleting one message: DELETE, then RENAME the rest down. */
  async remove(ref: MailboxRef, folder: SyncedSpoolFolder, msgnum: number): Promise<void> {
    await this.removeOnly(ref, folder, msgnum);
    await this.resequence(ref, folder);
  }

  /** DELETE without the renumbering, as an interrupted session leaves a folder. */
  async removeOnly(ref: MailboxRef, folder: SyncedSpoolFolder, msgnum: number): Promise<void> {
    await this.db.query(`DELETE FROM ${this.opts.table} WHERE dir = ? AND msgnum = ?`, [this.dir(ref, folder), msgnum]);
    await this.deleteFiles(ref, folder, msgnum);
  }

  /** The RENAME pass on closing a folder: `UPDATE ... SET dir=?, msgnum=? WHERE dir=? AND msgnum=?`. */
  async resequence(ref: MailboxRef, folder: string): Promise<void> {
    const dir = this.dir(ref, folder);
    const nums = (await this.db.query(`SELECT msgnum FROM ${this.opts.table} WHERE dir = ? ORDER BY msgnum`, [dir])).map((r) => Number(r['msgnum']));
    for (const [i, n] of nums.entries()) {
      if (n === i) continue;
      await this.db.query(`UPDATE ${this.opts.table} SET dir = ?, msgnum = ? WHERE dir = ? AND msgnum = ?`, [dir, i, dir, n]);
      await this.renameFiles(ref, folder, n, i);
    }
  }

  /** The rows of a folder: msgnum and msg_id, in order. */
  async folder(ref: MailboxRef, folder: string): Promise<{ msgnum: number; msgId: string }[]> {
    return (await this.db.query(`SELECT msgnum, msg_id FROM ${this.opts.table} WHERE dir = ? ORDER BY msgnum`, [this.dir(ref, folder)])).map((r) => ({ msgnum: Number(r['msgnum']), msgId: String(r['msg_id'] ?? '') }));
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

const fileName = (n: number, ext: string): string => `msg${String(n).padStart(4, '0')}.${ext}`;
const extOf = (name: string): string => name.slice(name.indexOf('.') + 1);

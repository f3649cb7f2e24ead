/**
 * Asterisk's ODBC voicemail table as a voicemail store (voicemail.conf `odbcstorage=`,
 * `odbctable=`; facts in docs/stores.md). Reads are one SELECT per mailbox, without the
 * recordings, which are read one at a time when an email is built. Changes go through the owning
 * Asterisk's AMI (VoicemailMove/VoicemailRemove: Asterisk renumbers and locks itself) where it is
 * configured; otherwise they are SQL statements following app_voicemail's own COPY (INSERT ...
 * SELECT), DELETE and renumbering (UPDATE ... SET msgnum), under the folder's spool lock, which is
 * the lock Asterisk takes for ODBC folders too. With the audio in the table a change is one
 * transaction; with `odbc_audio_on_disk=yes` each row change is one, made together with the row's
 * audio files in the spool folder (change-steps.ts, audio-files.ts).
 */
import { join } from 'node:path';
import type { LockMode } from '../../config/asterisk-conf.js';
import { SpoolError, VmbridgeError } from '../../errors.js';
import { DERIVED_ID_PREFIX } from '../../spool/identity.js';
import { withFolderLock } from '../../spool/lock.js';
import type { SpoolOwnership } from '../../spool/ownership.js';
import { isSyncedSpoolFolder, mailboxKey, SYNCED_SPOOL_FOLDERS, type MailboxRef, type SpoolMessage, type SpoolProblem, type SpoolSnapshot, type SyncedSpoolFolder } from '../../spool/types.js';
import { DEFAULT_MAXMSG, MessageNotFoundError } from '../../spool/write.js';
import { changesViaAmi, moveViaAmi, removeViaAmi, type AmiChanges } from '../ami-changes.js';
import { assertNoVoiceMailMain } from '../spool-changes.js';
import type { StoreBox, StoreChangeOutcome, StoreWatcher, StoreWatchOptions, VoicemailStore } from '../types.js';
import { msgName, SpoolAudio, type FolderAudio, type OdbcFolder } from './audio-files.js';
import { inOneTransaction, stepByStep, type ChangeSteps } from './change-steps.js';
import { AUDIO_ON_DISK_MARKER, DirLayout, isPlainIdentifier, messageFromRow, missingColumns, parseMessagePath, recordingProblem, rowName, tableShape, type TableShape } from './rows.js';
import { openDatabase, redactUrl, type Row, type SqlDatabase, type SqlSession } from './sql.js';
import { watchTable } from './watch.js';

/** A row of the table that cannot be used; the message is left alone on both sides. */
export class OdbcRowError extends SpoolError {}

/** The table is not app_voicemail's (columns missing) or cannot be read at all. */
export class OdbcTableError extends VmbridgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ODBC_TABLE', message, options);
  }
}

export interface OdbcStoreOptions {
  /** postgres://... or mysql://... (with the password; never logged). */
  readonly url: string;
  /** The setting the URL came from, for errors. */
  readonly urlSetting: string;
  /** voicemail.conf `odbctable` (default `voicemessages`). */
  readonly table: string;
  /** The spool path the Asterisk server writes into `dir` (its astspooldir). */
  readonly asteriskSpoolDir: string;
  /** The same spool as vmbridge sees it: folder locks, and audio when `odbc_audio_on_disk=yes`. */
  readonly localSpoolDir: string;
  readonly lockmode: LockMode;
  /** Extension of voicemail.conf's first `format=` (wav49 -> WAV): what `recording` holds. */
  readonly recordingExt: string;
  /** voicemail.conf `odbc_audio_on_disk=yes`: metadata in the table, audio in the spool folder. */
  readonly audioOnDisk: boolean;
  readonly ami?: AmiChanges;
  /** How often the table is looked at for changes where there are no notices (seconds; 0: never). */
  readonly pollSeconds: number;
  /** Whom the lock folders vmbridge creates are given (asterisk.conf runuser/rungroup, when root). */
  readonly ownership?: SpoolOwnership;
}

export class OdbcStore implements VoicemailStore {
  readonly kind = 'odbc' as const;
  readonly location: string;
  private readonly db: SqlDatabase;
  private readonly layout: DirLayout;
  private shape: Promise<TableShape> | undefined;
  /** The msg_id each audio path belonged to at the last look: a row renumbered since is not read as another. */
  private readonly idByPath = new Map<string, string>();
  private readonly audio: SpoolAudio;

  constructor(private readonly opts: OdbcStoreOptions, db?: SqlDatabase) {
    if (!isPlainIdentifier(opts.table)) throw new OdbcTableError(`odbctable ${JSON.stringify(opts.table)} is not a plain table name (letters, digits, _)`);
    this.db = db ?? openDatabase(opts.url, opts.urlSetting);
    this.layout = new DirLayout(opts.asteriskSpoolDir);
    this.audio = new SpoolAudio(opts.localSpoolDir, opts.ownership);
    this.location = `${redactUrl(opts.url)} table ${opts.table}`;
  }

  /** Checks the table is app_voicemail's; the first call reads its columns. */
  check(): Promise<TableShape> {
    this.shape ??= this.readShape().catch((err: unknown) => {
      this.shape = undefined;
      throw err;
    });
    return this.shape;
  }

  private async readShape(): Promise<TableShape> {
    const { table } = this.opts;
    let rows: Row[];
    try {
      rows = this.db.dialect === 'postgres'
        ? await this.db.query('SELECT column_name AS name FROM information_schema.columns WHERE table_name = ? AND table_schema = ANY (current_schemas(false))', [table.toLowerCase()])
        : await this.db.query('SELECT column_name AS name FROM information_schema.columns WHERE table_name = ? AND table_schema = DATABASE()', [table]);
    } catch (err) {
      throw new OdbcTableError(`${this.location}: cannot be read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const columns = rows.map((r) => String(r['name'] ?? r['NAME'] ?? r['COLUMN_NAME'] ?? ''));
    if (columns.length === 0) throw new OdbcTableError(`${this.location}: no such table (voicemail.conf odbctable=${table}); create it with Asterisk's schema scripts`);
    const missing = missingColumns(columns);
    if (missing.length > 0) throw new OdbcTableError(`${this.location}: lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} that app_voicemail writes; this is not Asterisk's voicemail table`);
    return tableShape(table, columns);
  }

  private async metaColumns(): Promise<string> {
    const shape = await this.check();
    const optional = [...shape.optional].join(', ');
    const size = this.db.dialect === 'postgres' ? 'octet_length(recording)' : 'OCTET_LENGTH(recording)';
    return `dir, msgnum, context, callerid, origtime, duration, flag, mailboxuser, mailboxcontext, msg_id${optional ? `, ${optional}` : ''}, ${size} AS reclen`;
  }

  async listMailboxes(): Promise<{ refs: MailboxRef[]; problems: SpoolProblem[] }> {
    await this.check();
    const rows = await this.db.query(`SELECT DISTINCT dir FROM ${this.opts.table}`);
    const refs = new Map<string, MailboxRef>();
    const problems: SpoolProblem[] = [];
    for (const r of rows) {
      const dir = String(r['dir'] ?? '');
      const where = this.layout.parse(dir);
      if ('problem' in where) {
        problems.push({ path: `${this.opts.table} rows with dir=${JSON.stringify(dir)}`, problem: `${where.problem}; left alone` });
        continue;
      }
      refs.set(mailboxKey(where.ref), where.ref);
    }
    return { refs: [...refs.values()], problems };
  }

  async readMailbox(ref: MailboxRef): Promise<SpoolSnapshot> {
    const dirs = this.layout.dirs(ref);
    const rows = await this.db.query(`SELECT ${await this.metaColumns()} FROM ${this.opts.table} WHERE dir IN (${dirs.map(() => '?').join(', ')}) ORDER BY dir, msgnum`, dirs);
    const messages: SpoolMessage[] = [];
    const problems: SpoolProblem[] = [];
    const warnings: SpoolProblem[] = [];
    const onDisk = this.folderAudio(ref);
    for (const row of rows) {
      const dir = String(row['dir']);
      const folder = SYNCED_SPOOL_FOLDERS[dirs.indexOf(dir)]!;
      const name = rowName(this.opts.table, dir, row['msgnum']);
      const exts = this.opts.audioOnDisk && Number(row['reclen']) === AUDIO_ON_DISK_MARKER.length ? await onDisk(folder, row['msgnum']) : { exts: [this.opts.recordingExt] };
      if ('problem' in exts) {
        problems.push({ path: name, problem: exts.problem });
        continue;
      }
      const reading = messageFromRow(row, this.opts.table, folder, exts.exts);
      if (!reading.message) {
        problems.push({ path: name, problem: reading.problem ?? 'unreadable' });
        continue;
      }
      const m = reading.message;
      if (m.envelope.problems?.length) warnings.push({ path: m.txtPath, problem: m.envelope.problems.join('; ') });
      for (const a of m.audio) this.idByPath.set(a.path, m.id);
      messages.push(m);
    }
    // One SELECT is one consistent view of the table (every supported database gives that).
    return { ref, messages, problems, ...(warnings.length ? { warnings } : {}), settled: true };
  }

  /**
   * The audio files AUDMAGIC rows have in their spool folder, each folder listed once per look. A
   * row with a link or other non-file among its files is a problem, left alone on both sides.
   */
  private folderAudio(ref: MailboxRef): (folder: SyncedSpoolFolder, msgnum: unknown) => Promise<{ exts: string[] } | { problem: string }> {
    const listings = new Map<SyncedSpoolFolder, Promise<FolderAudio>>();
    return async (folder, msgnum) => {
      const n = Number(msgnum);
      if (!Number.isInteger(n)) return { exts: [] }; // messageFromRow names the number
      let listing = listings.get(folder);
      if (!listing) listings.set(folder, (listing = this.audio.list(ref, folder)));
      try {
        const audio = await listing;
        const bad = audio.unsafe.get(n);
        if (bad) return { problem: `its audio file ${bad.path} ${bad.what}; a link is never followed, the message is left alone on both sides` };
        return { exts: (audio.names.get(n) ?? []).map((f) => f.slice(f.indexOf('.') + 1)) };
      } catch (err) {
        return { problem: `${err instanceof Error ? err.message : String(err)}; the message is left alone on both sides` };
      }
    };
  }

  async readAudio(_ref: MailboxRef, path: string): Promise<Buffer> {
    const at = parseMessagePath(path);
    if (!at) throw new OdbcRowError(path, 'is not a path this store gave');
    const name = rowName(this.opts.table, at.dir, at.msgnum);
    const row = await this.rowOf(at, name, this.idByPath.get(path));
    const bytes = toBuffer(row['recording']);
    if (bytes.length === AUDIO_ON_DISK_MARKER.length && bytes.toString('latin1') === AUDIO_ON_DISK_MARKER) return this.audioFileOf(at, name, row);
    const problem = recordingProblem(at.ext, bytes);
    if (problem) throw new OdbcRowError(name, `${problem}; the message is left alone on both sides`);
    return bytes;
  }

  /** The row at a path's place, checked to be the message the path was given for. */
  private async rowOf(at: { dir: string; msgnum: number }, name: string, id: string | undefined): Promise<Row> {
    const rows = await this.db.query(`SELECT recording, msg_id, origtime, callerid FROM ${this.opts.table} WHERE dir = ? AND msgnum = ?`, [at.dir, at.msgnum]);
    const row = rows[0];
    if (!row) throw new OdbcRowError(name, 'is gone (renumbered or deleted since it was read); read again at the next reconcile');
    if (id !== undefined && !id.startsWith(DERIVED_ID_PREFIX) && String(row['msg_id'] ?? '') !== id) {
      throw new OdbcRowError(name, `now holds another message than ${id} (renumbered since it was read); read again at the next reconcile`);
    }
    return row;
  }

  /**
   * An AUDMAGIC row's file. It is opened first and the row looked at again after: if the row is
   * still the same message, the open file is that message's, whatever is renamed meanwhile.
   */
  private async audioFileOf(at: { dir: string; msgnum: number; ext: string }, name: string, row: Row): Promise<Buffer> {
    const where = this.layout.parse(at.dir);
    if ('problem' in where) throw new OdbcRowError(name, where.problem);
    if (!isSyncedSpoolFolder(where.folder)) throw new OdbcRowError(name, 'is not in a folder vmbridge syncs');
    const place = { folder: where.folder, msgnum: at.msgnum };
    const file = join(this.audio.folder(where.ref, where.folder), msgName(at.msgnum, at.ext));
    const fh = await this.audio.openAudio(where.ref, place, at.ext);
    if (fh === undefined) throw new OdbcRowError(file, `is not there, though ${name} keeps its audio on disk (AUDMAGIC); read again at the next reconcile`);
    try {
      const again = (await this.db.query(`SELECT msg_id, origtime, callerid FROM ${this.opts.table} WHERE dir = ? AND msgnum = ?`, [at.dir, at.msgnum]))[0];
      if (!again || !sameMessage(row, again)) throw new OdbcRowError(name, 'was renumbered while its audio was read; read again at the next reconcile');
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }

  assertChangeable(ref: MailboxRef): Promise<void> {
    return assertNoVoiceMailMain(this.opts.ami?.client, ref);
  }

  async move(box: StoreBox, id: string, from: SyncedSpoolFolder, to: SyncedSpoolFolder): Promise<StoreChangeOutcome> {
    if (changesViaAmi(this.opts.ami, id)) return moveViaAmi(this.opts.ami, (ref) => this.readMailbox(ref), box, id, from, to);
    const { ref } = box;
    const maxmsg = box.maxmsg ?? DEFAULT_MAXMSG;
    const src = this.layout.dir(ref, from);
    const dst = this.layout.dir(ref, to);
    return this.withFolderLock(ref, from, () => this.withFolderLock(ref, to, () => this.change(ref, async (steps): Promise<StoreChangeOutcome> => {
      const moved = await steps.step(async (tx, audio) => {
        const at = await this.find(tx, src, id);
        if (at === undefined) {
          if ((await this.find(tx, dst, id)) !== undefined) return 'already' as const;
          throw new MessageNotFoundError(ref, id, [from, to]);
        }
        if ((await this.msgnums(tx, dst)).length >= maxmsg) return 'full' as const;
        const next = await this.nextMsgnum(tx, dst);
        audio?.relocate({ folder: from, msgnum: at }, { folder: to, msgnum: next });
        await this.copyRow(tx, src, at, dst, next);
        await this.deleteRow(tx, src, at);
        return 'moved' as const;
      });
      if (moved === 'full') return { done: false, problem: `${to} is full (maxmsg=${maxmsg})` };
      await this.closeGaps(steps, ref, from);
      await this.tidy(steps, ref, [from, to]);
      return { done: true, via: 'sql', alreadyDone: moved === 'already', repairs: steps.repairs };
    })));
  }

  async remove(box: StoreBox, id: string, folder: SyncedSpoolFolder): Promise<StoreChangeOutcome> {
    if (changesViaAmi(this.opts.ami, id)) return removeViaAmi(this.opts.ami, (ref) => this.readMailbox(ref), box, id, folder);
    const { ref } = box;
    const dir = this.layout.dir(ref, folder);
    const keep = box.backupDeleted ?? 0;
    const deletedDir = this.layout.dir(ref, 'Deleted');
    const run = (): Promise<StoreChangeOutcome> => this.change(ref, async (steps) => {
      const removed = await steps.step(async (tx, audio) => {
        const at = await this.find(tx, dir, id);
        if (at === undefined) return false;
        if (keep > 0) {
          // backupdeleted: the message goes to the end of Deleted, as save_to_folder puts it there.
          const next = await this.nextMsgnum(tx, deletedDir);
          audio?.relocate({ folder, msgnum: at }, { folder: 'Deleted', msgnum: next });
          await this.copyRow(tx, dir, at, deletedDir, next);
        } else {
          audio?.discard({ folder, msgnum: at });
        }
        await this.deleteRow(tx, dir, at);
        return true;
      });
      if (keep > 0) await this.trimDeleted(steps, ref, keep);
      await this.closeGaps(steps, ref, folder);
      await this.tidy(steps, ref, keep > 0 ? [folder, 'Deleted'] : [folder]);
      return { done: true, via: 'sql', alreadyDone: !removed, repairs: steps.repairs };
    });
    // Deleted is locked inside the folder, the order in which Asterisk's close_mailbox takes them.
    return this.withFolderLock(ref, folder, () => (keep > 0 ? this.withFolderLock(ref, 'Deleted', run) : run()));
  }

  async renumber(ref: MailboxRef, folder: SyncedSpoolFolder): Promise<readonly string[]> {
    return this.withFolderLock(ref, folder, () => this.change(ref, async (steps) => {
      await this.closeGaps(steps, ref, folder);
      await this.tidy(steps, ref, [folder]);
      return steps.repairs;
    }));
  }

  async withFolderLock<T>(ref: MailboxRef, folder: OdbcFolder, fn: () => T | Promise<T>): Promise<T> {
    // Asterisk locks an ODBC folder by the same .lock file in the spool folder (and creates it first).
    return withFolderLock(await this.audio.prepare(ref, folder), this.opts.lockmode, fn);
  }

  watch(onChange: (ref: MailboxRef) => void, opts: StoreWatchOptions = {}): StoreWatcher {
    return watchTable({ db: this.db, table: this.opts.table, layout: this.layout, pollSeconds: this.opts.pollSeconds, onChange, ...(opts.log ? { log: opts.log } : {}) });
  }

  close(): Promise<void> {
    return this.db.close();
  }

  private change<T>(ref: MailboxRef, fn: (steps: ChangeSteps) => Promise<T>): Promise<T> {
    return this.opts.audioOnDisk ? stepByStep(this.db, this.audio, ref, fn) : inOneTransaction(this.db, fn);
  }

  /** The msgnum of message `id` in `dir` (by msg_id, or by the derived id of its row). */
  private async find(tx: SqlSession, dir: string, id: string): Promise<number | undefined> {
    if (!id.startsWith(DERIVED_ID_PREFIX)) {
      const rows = await tx.query(`SELECT msgnum FROM ${this.opts.table} WHERE dir = ? AND msg_id = ? ORDER BY msgnum`, [dir, id]);
      return rows.length > 0 ? Number(rows[0]!['msgnum']) : undefined;
    }
    const where = this.layout.parse(dir);
    if ('problem' in where || !isSyncedSpoolFolder(where.folder)) return undefined;
    const rows = await tx.query(`SELECT ${await this.metaColumns()} FROM ${this.opts.table} WHERE dir = ? ORDER BY msgnum`, [dir]);
    for (const row of rows) {
      const m = messageFromRow(row, this.opts.table, where.folder, [this.opts.recordingExt]).message;
      if (m?.id === id) return m.msgnum;
    }
    return undefined;
  }

  /** The message numbers of `dir`, lowest first (greetings, at -1, are not messages). */
  private async msgnums(tx: SqlSession, dir: string): Promise<number[]> {
    return (await tx.query(`SELECT msgnum FROM ${this.opts.table} WHERE dir = ? AND msgnum >= 0 ORDER BY msgnum`, [dir])).map((r) => Number(r['msgnum']));
  }

  private async nextMsgnum(tx: SqlSession, dir: string): Promise<number> {
    const rows = await tx.query(`SELECT MAX(msgnum) AS m FROM ${this.opts.table} WHERE dir = ?`, [dir]);
    const max = rows[0]?.['m'];
    return max === null || max === undefined ? 0 : Number(max) + 1;
  }

  /** app_voicemail's COPY: a new row in `dst` from the old one, recording and msg_id included. */
  private async copyRow(tx: SqlSession, src: string, msgnum: number, dst: string, next: number): Promise<void> {
    const shape = await this.check();
    const extra = [...shape.optional];
    const cols = ['msg_id', 'context', 'callerid', 'origtime', 'duration', 'recording', 'flag', 'mailboxuser', 'mailboxcontext', ...extra].join(', ');
    await tx.query(`INSERT INTO ${this.opts.table} (dir, msgnum, ${cols}) SELECT ?, ?, ${cols} FROM ${this.opts.table} WHERE dir = ? AND msgnum = ?`, [dst, next, src, msgnum]);
  }

  private async deleteRow(tx: SqlSession, dir: string, msgnum: number): Promise<void> {
    await tx.query(`DELETE FROM ${this.opts.table} WHERE dir = ? AND msgnum = ?`, [dir, msgnum]);
  }

  /** backupdeleted: Deleted keeps its last `keep` messages; the oldest beyond go, files and all. */
  private async trimDeleted(steps: ChangeSteps, ref: MailboxRef, keep: number): Promise<void> {
    const dir = this.layout.dir(ref, 'Deleted');
    const nums = await steps.step((tx) => this.msgnums(tx, dir));
    for (const n of nums.slice(0, Math.max(0, nums.length - keep))) {
      await steps.step(async (tx, audio) => {
        audio?.discard({ folder: 'Deleted', msgnum: n });
        await this.deleteRow(tx, dir, n);
      });
    }
    await this.closeGaps(steps, ref, 'Deleted');
  }

  /** Closes gaps: each row down to its position, lowest first (so no two rows ever share a number). */
  private async closeGaps(steps: ChangeSteps, ref: MailboxRef, folder: OdbcFolder): Promise<void> {
    const dir = this.layout.dir(ref, folder);
    const nums = await steps.step((tx) => this.msgnums(tx, dir));
    for (const [i, n] of nums.entries()) {
      if (n === i) continue;
      await steps.step(async (tx, audio) => {
        audio?.relocate({ folder, msgnum: n }, { folder, msgnum: i });
        await tx.query(`UPDATE ${this.opts.table} SET msgnum = ? WHERE dir = ? AND msgnum = ?`, [i, dir, n]);
      });
      steps.repairs.push(`${rowName(this.opts.table, dir, n)} renumbered ${i}${this.opts.audioOnDisk ? ', its audio files with it' : ''}`);
    }
  }

  private async tidy(steps: ChangeSteps, ref: MailboxRef, folders: readonly OdbcFolder[]): Promise<void> {
    for (const folder of folders) {
      const dir = this.layout.dir(ref, folder);
      await steps.tidy(folder, async (tx) => new Set(await this.msgnums(tx, dir)));
    }
  }
}

/** Two looks at a row show the same message (msg_id alone cannot tell rows written before Asterisk 11). */
function sameMessage(a: Row, b: Row): boolean {
  return ['msg_id', 'origtime', 'callerid'].every((k) => String(a[k] ?? '') === String(b[k] ?? ''));
}

function toBuffer(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (typeof v === 'string') return Buffer.from(v, 'latin1');
  return Buffer.alloc(0);
}


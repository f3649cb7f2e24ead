/**
 * app_voicemail's ODBC table as vmbridge reads it (pure: no I/O). One row is one message:
 * `dir` is the folder's full spool path as the Asterisk server writes it
 * (`<astspooldir>/voicemail/<context>/<mailbox>/<Folder>`), `msgnum` its 0-based position (-1 for
 * greetings), `recording` the audio of the first `format=` (or the 8 bytes `AUDMAGIC` when
 * `odbc_audio_on_disk=yes` keeps the audio in the spool folder), `msg_id` the identity that
 * survives renumbering. The envelope is what Asterisk writes into a temporary msgNNNN.txt when it
 * plays the row: every column but dir, msgnum, recording, mailboxuser and mailboxcontext.
 */
import { isSafeName } from '../../spool/names.js';
import { messageIdentity } from '../../spool/identity.js';
import { isSyncedSpoolFolder, SYNCED_SPOOL_FOLDERS, type AudioFile, type Envelope, type MailboxRef, type SpoolMessage, type SyncedSpoolFolder } from '../../spool/types.js';
import type { Row } from './sql.js';

/** The columns Asterisk 22 writes for every message; a table without one of them cannot be Asterisk's. */
export const REQUIRED_COLUMNS = ['dir', 'msgnum', 'recording', 'context', 'callerid', 'origtime', 'duration', 'flag', 'mailboxuser', 'mailboxcontext', 'msg_id'] as const;
/** Columns older or newer schemas have or lack: used when present. */
export const OPTIONAL_COLUMNS = ['macrocontext', 'category'] as const;

export const AUDIO_ON_DISK_MARKER = 'AUDMAGIC';

/** A table name is put into SQL text, so only plain identifiers (as Asterisk's own are) are taken. */
export function isPlainIdentifier(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name);
}

/** What the table turned out to have, from its column list. */
export interface TableShape {
  readonly table: string;
  readonly optional: ReadonlySet<(typeof OPTIONAL_COLUMNS)[number]>;
}

/** The missing required columns of a table whose columns are `columns` (any case). */
export function missingColumns(columns: readonly string[]): string[] {
  const have = new Set(columns.map((c) => c.toLowerCase()));
  return REQUIRED_COLUMNS.filter((c) => !have.has(c));
}

export function tableShape(table: string, columns: readonly string[]): TableShape {
  const have = new Set(columns.map((c) => c.toLowerCase()));
  return { table, optional: new Set(OPTIONAL_COLUMNS.filter((c) => have.has(c))) };
}

/** Where a mailbox's folders are, in the table's terms. */
export class DirLayout {
  /** `<astspooldir>/voicemail/`, as the Asterisk server writes it into `dir`. */
  readonly prefix: string;

  constructor(asteriskSpoolDir: string) {
    this.prefix = `${asteriskSpoolDir.replace(/\/+$/, '')}/voicemail/`;
  }

  dir(ref: MailboxRef, folder: string): string {
    return `${this.prefix}${ref.context}/${ref.mailbox}/${folder}`;
  }

  /** The synced folders' dirs of a mailbox, in SYNCED_SPOOL_FOLDERS order. */
  dirs(ref: MailboxRef): string[] {
    return SYNCED_SPOOL_FOLDERS.map((f) => this.dir(ref, f));
  }

  /** The mailbox and folder of a `dir`, or why it is not one of a mailbox's folders. */
  parse(dir: string): { ref: MailboxRef; folder: string } | { problem: string } {
    if (!dir.startsWith(this.prefix)) return { problem: `dir is not under ${this.prefix} (the spool path the settings give for this Asterisk)` };
    const parts = dir.slice(this.prefix.length).split('/');
    if (parts.length !== 3) return { problem: 'dir is not <context>/<mailbox>/<folder> below the voicemail folder' };
    const [context, mailbox, folder] = parts as [string, string, string];
    if (!isSafeName(context) || !isSafeName(mailbox)) return { problem: 'dir names a context or mailbox that is not a safe name' };
    return { ref: { context, mailbox }, folder };
  }
}

/** How a row is named in logs: the table and its primary key. */
export function rowName(table: string, dir: string, msgnum: unknown): string {
  return `${table} row (dir=${JSON.stringify(dir)}, msgnum=${String(msgnum)})`;
}

const text = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));

function integer(v: unknown): number | undefined {
  const s = text(v)?.trim();
  if (s === undefined || !/^-?\d+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The spool-style path a row's audio (or envelope) is known by: `<dir>/msgNNNN.<ext>`. */
export function messagePath(dir: string, msgnum: number, ext: string): string {
  return `${dir}/msg${String(msgnum).padStart(4, '0')}.${ext}`;
}

/** Parses `<dir>/msgNNNN.<ext>` back into its parts. */
export function parseMessagePath(path: string): { dir: string; msgnum: number; ext: string } | undefined {
  const m = /^(.*)\/msg(\d{4})\.([A-Za-z0-9]+)$/.exec(path);
  return m ? { dir: m[1]!, msgnum: Number(m[2]), ext: m[3]! } : undefined;
}

export interface RowReading {
  readonly message?: SpoolMessage;
  /** The row is not a message vmbridge can use; named with its key. */
  readonly problem?: string;
}

/**
 * One row of a mailbox's synced folder as a message. `audioExts` are the audio files it has: the
 * first format's for a recording in the table, the files on disk for AUDMAGIC rows.
 */
export function messageFromRow(row: Row, table: string, folder: SyncedSpoolFolder, audioExts: readonly string[]): RowReading {
  const dir = text(row['dir']) ?? '';
  const msgnum = integer(row['msgnum']);
  const name = rowName(table, dir, row['msgnum']);
  if (msgnum === undefined || msgnum < 0 || msgnum > 9998) return { problem: `${name}: msgnum is not a message number (0-9998)` };
  if (!isSyncedSpoolFolder(folder)) return { problem: `${name}: not a synced folder` };
  const problems: string[] = [];
  const origtime = integer(row['origtime']);
  if (text(row['origtime']) !== undefined && origtime === undefined) problems.push(`origtime ${JSON.stringify(text(row['origtime']))} is not a number`);
  const duration = integer(row['duration']);
  const raw: Record<string, string> = {};
  const put = (k: string, v: string | undefined): void => {
    if (v !== undefined) raw[k] = v;
  };
  put('origmailbox', text(row['mailboxuser']));
  put('context', text(row['context']));
  put('macrocontext', text(row['macrocontext']));
  put('callerid', text(row['callerid']));
  put('origtime', text(row['origtime']));
  put('duration', text(row['duration']));
  put('flag', text(row['flag']));
  put('category', text(row['category']));
  put('msg_id', text(row['msg_id']));
  const envelope: Envelope = {
    raw,
    ...(raw['origmailbox'] !== undefined ? { origmailbox: raw['origmailbox'] } : {}),
    ...(raw['context'] !== undefined ? { context: raw['context'] } : {}),
    ...(raw['macrocontext'] !== undefined ? { macrocontext: raw['macrocontext'] } : {}),
    ...(raw['callerid'] !== undefined ? { callerid: raw['callerid'] } : {}),
    ...(origtime !== undefined ? { origtime } : {}),
    ...(duration !== undefined ? { duration } : {}),
    ...(raw['flag'] !== undefined ? { flag: raw['flag'] } : {}),
    ...(raw['category'] !== undefined ? { category: raw['category'] } : {}),
    ...(raw['msg_id'] !== undefined && raw['msg_id'] !== '' ? { msgId: raw['msg_id'] } : {}),
    ...(problems.length ? { problems } : {}),
  };
  const { id, derived } = messageIdentity(envelope);
  const audio: AudioFile[] = audioExts.map((ext) => ({ ext, path: messagePath(dir, msgnum, ext) }));
  return { message: { id, derivedId: derived, folder, msgnum, txtPath: messagePath(dir, msgnum, 'txt'), audio, envelope } };
}

/**
 * Whether a recording's bytes can be the format its extension says. Only what can be told from
 * the bytes is checked (WAV's RIFF header, GSM's frame size and signature nibble); other formats pass.
 */
export function recordingProblem(ext: string, bytes: Buffer): string | undefined {
  if (bytes.length === 0) return 'the recording is empty';
  const lower = ext.toLowerCase();
  if (lower === 'wav' || lower === 'wav49') {
    if (bytes.length < 12 || bytes.toString('latin1', 0, 4) !== 'RIFF' || bytes.toString('latin1', 8, 12) !== 'WAVE') return `the recording is not a WAV file (format ${ext})`;
  }
  if (lower === 'gsm') {
    if (bytes.length % 33 !== 0 || (bytes[0]! & 0xf0) !== 0xd0) return 'the recording is not GSM audio (33-byte frames)';
  }
  return undefined;
}

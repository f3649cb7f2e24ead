/**
 * A stand-in for what Asterisk's app_voicemail (file storage) does to the spool, for tests and
 * the demo. Not product code. It reproduces the observable file-system behaviour: staging in
 * `<mailbox>/tmp/`, the `.lock` hard-link protocol, `max+1` numbering, the order in which files
 * appear and disappear, copy-then-delete moves and the renumbering that follows.
 *
 * Sources: app_voicemail.c (leave_voicemail, last_message_index, copy_plain_file, vm_delete,
 * close_mailbox, save_to_folder), main/app.c (ast_lock_path_lockfile), main/config.c
 * (ast_config_text_file_save), and inotify traces of a real Asterisk 22 doing each of these.
 */
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, link, mkdir, open, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MailboxRef, SpoolFolder } from '../../src/spool/types.js';

/** Asterisk gives up on a folder lock after 5 s (ast_lock_path_lockfile). */
export const ASTERISK_LOCK_TIMEOUT_MS = 5_000;
/** Highest usable message number: `last_message_index` stops below MAXMSGLIMIT (9999). */
const MAX_MSGNUM = 9998;

// ---------------------------------------------------------------------------------------------
// Paths

function checkSegment(what: string, value: string): void {
  if (value === '' || value === '.' || value === '..' || /[/\0]/.test(value)) {
    throw new Error(`unsafe ${what} for a spool path: ${JSON.stringify(value)}`);
  }
}

/** `<spool>/voicemail/<context>/<mailbox>` */
export function mailboxDir(spoolDir: string, ref: MailboxRef): string {
  checkSegment('context', ref.context);
  checkSegment('mailbox', ref.mailbox);
  return join(spoolDir, 'voicemail', ref.context, ref.mailbox);
}

export function folderDir(spoolDir: string, ref: MailboxRef, folder: SpoolFolder): string {
  return join(mailboxDir(spoolDir, ref), folder);
}

const msgBase = (msgnum: number): string => `msg${String(msgnum).padStart(4, '0')}`;

/** The extension Asterisk uses for a format name: the name itself, except wav49 is `.WAV`. */
export function formatExtension(format: string): string {
  return format === 'wav49' ? 'WAV' : format;
}

/**
 * Asterisk renames, copies and deletes audio by walking its registered formats, in registration
 * order: gsm, wav, wav49 (the traces show .gsm, .wav, .WAV every time). Others follow as given.
 */
const FORMAT_WALK_ORDER = ['gsm', 'wav', 'WAV'];
function inWalkOrder(exts: readonly string[]): string[] {
  const known = FORMAT_WALK_ORDER.filter((e) => exts.includes(e));
  return [...known, ...exts.filter((e) => !FORMAT_WALK_ORDER.includes(e))];
}

// ---------------------------------------------------------------------------------------------
// Locking (asterisk.conf lockmode = lockfile, the default)

export class LockTimeoutError extends Error {
  readonly code = 'ELOCKED';
  readonly path: string;
  constructor(path: string) {
    super(`Failed to lock path '${path}': File exists`);
    this.name = 'LockTimeoutError';
    this.path = path;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface LockOptions {
  /** Default 5 s, as Asterisk. Lock tests shorten it. */
  readonly timeoutMs?: number;
}

/**
 * Takes `<dir>/.lock` the way Asterisk does: create an empty `.lock-XXXXXXXX` (8 hex digits)
 * exclusively, hard-link it to `.lock` until that stops failing with EEXIST, remove the temp name.
 * Returns the unlock function (unlink `.lock`). Nothing detects stale locks, as in Asterisk.
 */
export async function lockFolder(dir: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const lockPath = join(dir, '.lock');
  let tmpPath: string;
  for (;;) {
    tmpPath = join(dir, `.lock-${randomBytes(4).toString('hex')}`);
    try {
      await (await open(tmpPath, 'wx', 0o666)).close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const deadline = Date.now() + (opts.timeoutMs ?? ASTERISK_LOCK_TIMEOUT_MS);
  try {
    for (;;) {
      try {
        await link(tmpPath, lockPath);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (Date.now() >= deadline) throw new LockTimeoutError(dir);
        // Asterisk spins on sched_yield(); a short sleep keeps the wait just as responsive.
        await sleep(2);
      }
    }
  } finally {
    await unlink(tmpPath);
  }
  let held = true;
  return async () => {
    // Only ever unlink a lock we still hold: a second unlink could remove someone else's.
    if (!held) return;
    held = false;
    await unlink(lockPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  };
}

export async function withFolderLock<T>(dir: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const unlock = await lockFolder(dir, opts);
  try {
    return await fn();
  } finally {
    await unlock();
  }
}

export interface HeldLock {
  /** Resolves once the lock has been given up (after `ms`, or early by release()). */
  readonly released: Promise<void>;
  release(): Promise<void>;
}

/**
 * Holds a folder's lock for `ms`, like another process would (a foreign `.lock`). Resolves as soon
 * as the lock is held, so what the test does next really meets a locked folder.
 */
export async function holdLock(dir: string, ms: number): Promise<HeldLock> {
  await mkdir(dir, { recursive: true });
  const unlock = await lockFolder(dir);
  let timer: NodeJS.Timeout | undefined;
  let done!: () => void;
  const released = new Promise<void>((resolve) => {
    done = resolve;
  });
  const release = async (): Promise<void> => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    await unlock();
    done();
  };
  timer = setTimeout(() => void release(), ms);
  return { released, release };
}

// ---------------------------------------------------------------------------------------------
// Reading a folder

const MSG_FILE = /^msg(\d{4})\.(.+)$/;

async function listNames(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Message number → extensions on disk (txt included), for every `msgNNNN.*`. */
async function filesByMessage(dir: string): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (const name of await listNames(dir)) {
    const m = MSG_FILE.exec(name);
    if (!m) continue;
    const n = Number(m[1]);
    out.set(n, [...(out.get(n) ?? []), m[2]!]);
  }
  return out;
}

/** Numbers of the messages in a folder: a message exists if and only if its `.txt` does. */
async function messageNumbers(dir: string): Promise<number[]> {
  const nums: number[] = [];
  for (const [n, exts] of await filesByMessage(dir)) {
    if (exts.some((e) => e.toLowerCase() === 'txt') && n <= MAX_MSGNUM) nums.push(n);
  }
  return nums.sort((a, b) => a - b);
}

/** last_message_index: the highest `msgNNNN.txt`, or -1. Gaps below it are not reused. */
export async function lastMessageIndex(dir: string): Promise<number> {
  const nums = await messageNumbers(dir);
  return nums.length > 0 ? nums[nums.length - 1]! : -1;
}

export interface ListedMessage {
  readonly msgnum: number;
  /** The envelope's msg_id, or '' when the .txt has none (written by Asterisk before 11). */
  readonly msgId: string;
  /** File names (`msg0003.txt`, `msg0003.WAV`, ...), sorted. */
  readonly files: readonly string[];
  readonly txtPath: string;
}

/** Reads msg_id from either style (`msg_id=x` or the rewritten `msg_id = x`). */
function msgIdOf(txt: string): string {
  const m = /^[ \t]*msg_id[ \t]*=>?[ \t]*(.*?)[ \t\r]*$/m.exec(txt);
  return m ? m[1]! : '';
}

export async function listFolder(spoolDir: string, ref: MailboxRef, folder: SpoolFolder): Promise<ListedMessage[]> {
  const dir = folderDir(spoolDir, ref, folder);
  const byMessage = await filesByMessage(dir);
  const out: ListedMessage[] = [];
  for (const n of await messageNumbers(dir)) {
    const exts = byMessage.get(n) ?? [];
    const txtExt = exts.find((e) => e.toLowerCase() === 'txt') ?? 'txt';
    const txtPath = join(dir, `${msgBase(n)}.${txtExt}`);
    const text = await readFile(txtPath, 'latin1').catch(() => '');
    out.push({ msgnum: n, msgId: msgIdOf(text), files: exts.map((e) => `${msgBase(n)}.${e}`).sort(), txtPath });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Envelope (msgNNNN.txt)

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => String(n).padStart(2, '0');

/** strftime `%a %b %e %r UTC %Y` in UTC, e.g. `Sun Nov 22 11:32:30 AM UTC 2026`; %e is space-padded. */
export function formatOrigdate(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  const h = d.getUTCHours();
  const h12 = h % 12 === 0 ? 12 : h % 12;
  const clock = `${two(h12)}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} ${h < 12 ? 'AM' : 'PM'}`;
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${clock} UTC ${d.getUTCFullYear()}`;
}

/** ctime(3) layout (`Sun Nov 22 11:32:30 2026`), used in the header of rewritten files. */
function formatCtime(date: Date): string {
  const time = `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}`;
  return `${DAYS[date.getUTCDay()]} ${MONTHS[date.getUTCMonth()]} ${String(date.getUTCDate()).padStart(2, ' ')} ${time} ${date.getUTCFullYear()}`;
}

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');

/** Asterisk's in-memory msg_id counter; it starts at 0 each time the module loads. */
let msgIdCounter = 0;
/** Local channel sequence numbers, for realistic `callerchan` values. */
let channelCounter = 0;

type Field = readonly [key: string, value: string];

/** Writes `key=value` lines after the comment header, exactly like leave_voicemail. */
function asteriskText(fields: readonly Field[]): string {
  return `;\n; Message Information file\n;\n[message]\n${fields.map(([k, v]) => `${k}=${v}\n`).join('')}`;
}

/**
 * What the file looks like after Asterisk rewrote it with ast_config_text_file_save (add_message_id
 * does this when a message without msg_id is listed): a `;!` header naming the file, the original
 * comments dropped, blank lines up to the line where [message] stood (line 4), `key = value` with
 * semicolons escaped, and msg_id appended at the end because it was added last.
 */
function rewrittenText(fields: readonly Field[], path: string, now: Date): string {
  const header = [';!', ';! Automatically generated configuration file', `;! Filename: ${path}`, ';! Generator: app_voicemail', `;! Creation Date: ${formatCtime(now)}`, ';!'];
  const body = fields.map(([k, v]) => `${k} = ${v.replace(/;/g, '\\;')}\n`).join('');
  return `${header.join('\n')}\n\n\n\n[message]\n${body}`;
}

// ---------------------------------------------------------------------------------------------
// Audio

/** Half a second of silence in a plausible container for each format (content is not checked). */
function silentAudio(ext: string): Buffer {
  if (ext === 'wav') {
    const data = Buffer.alloc(8000); // 0.5 s of 8 kHz 16-bit mono PCM
    const h = Buffer.alloc(44);
    h.write('RIFF', 0, 'ascii');
    h.writeUInt32LE(36 + data.length, 4);
    h.write('WAVEfmt ', 8, 'ascii');
    h.writeUInt32LE(16, 16);
    h.writeUInt16LE(1, 20); // PCM
    h.writeUInt16LE(1, 22);
    h.writeUInt32LE(8000, 24);
    h.writeUInt32LE(16000, 28);
    h.writeUInt16LE(2, 32);
    h.writeUInt16LE(16, 34);
    h.write('data', 36, 'ascii');
    h.writeUInt32LE(data.length, 40);
    return Buffer.concat([h, data]);
  }
  if (ext === 'WAV') {
    // wav49: GSM 6.10 in RIFF/WAVE, 65-byte blocks of 320 samples.
    const blocks = 13;
    const data = Buffer.alloc(blocks * 65);
    const h = Buffer.alloc(60);
    h.write('RIFF', 0, 'ascii');
    h.writeUInt32LE(52 + data.length, 4);
    h.write('WAVEfmt ', 8, 'ascii');
    h.writeUInt32LE(20, 16);
    h.writeUInt16LE(0x31, 20); // WAVE_FORMAT_GSM610
    h.writeUInt16LE(1, 22);
    h.writeUInt32LE(8000, 24);
    h.writeUInt32LE(1625, 28);
    h.writeUInt16LE(65, 32);
    h.writeUInt16LE(0, 34);
    h.writeUInt16LE(2, 36);
    h.writeUInt16LE(320, 38);
    h.write('fact', 40, 'ascii');
    h.writeUInt32LE(4, 44);
    h.writeUInt32LE(blocks * 320, 48);
    h.write('data', 52, 'ascii');
    h.writeUInt32LE(data.length, 56);
    return Buffer.concat([h, data]);
  }
  if (ext === 'gsm') {
    // Raw GSM: 33-byte frames of 20 ms, each starting with the 0xD signature nibble.
    const frames = Buffer.alloc(25 * 33);
    for (let i = 0; i < frames.length; i += 33) frames[i] = 0xd0;
    return frames;
  }
  return Buffer.alloc(1000);
}

// ---------------------------------------------------------------------------------------------
// Leaving a message

export interface LeaveVoicemailOptions {
  /** As Asterisk writes it: `"Name" <num>`, `num`, `Name` or `Unknown`. Written raw, unescaped. */
  readonly callerid?: string;
  /** Seconds. */
  readonly duration?: number;
  /** VoiceMail option U: goes to Urgent/ with flag=Urgent. */
  readonly urgent?: boolean;
  /** voicemail.conf `format=` list. Default wav49, gsm, wav (files .WAV, .gsm, .wav). */
  readonly formats?: readonly string[];
  /** Bytes for every audio file. Default: half a second of silence per format. */
  readonly audio?: Buffer;
  /** Epoch seconds. Default: now. */
  readonly origtime?: number;
  /** Default `<origtime>-<8 hex counter>`; null writes no msg_id line, like Asterisk before 11. */
  readonly msgId?: string | null;
  /** 'rewritten' is the file after ast_config_text_file_save: `;!` header, `key = value`. */
  readonly style?: 'asterisk' | 'rewritten';
  /** Asterisk 20 and older write `macrocontext=` right after `context=`. */
  readonly macrocontext?: boolean;
  /** Write the .txt as ISO-8859-1 bytes, as from a channel whose caller name is Latin-1. */
  readonly latin1?: boolean;
  /** Overrides for the channel-derived envelope values. */
  readonly envelope?: Partial<Record<'context' | 'exten' | 'rdnis' | 'priority' | 'callerchan' | 'category', string>>;
  /** How long to wait for a held folder lock (Asterisk: 5 s). */
  readonly lockTimeoutMs?: number;
}

export interface LeftVoicemail {
  readonly folder: 'INBOX' | 'Urgent';
  readonly msgnum: number;
  /** '' when written without msg_id. */
  readonly msgId: string;
  readonly txtPath: string;
}

const MKSTEMP_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** mkstemp("<dir>/XXXXXX"): a new, exclusively created file with mode 0600. */
async function mkstemp(dir: string): Promise<string> {
  for (;;) {
    const name = Array.from(randomBytes(6), (b) => MKSTEMP_CHARS[b % MKSTEMP_CHARS.length]).join('');
    const path = join(dir, name);
    try {
      await (await open(path, 'wx', 0o600)).close();
      return path;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

const fileMode = (): number => 0o666 & ~process.umask();

/**
 * Leaves a voicemail exactly as app_voicemail does on hangup:
 * 1. the mailbox's tmp/ and INBOX/ exist from call start; INBOX is locked briefly to count
 *    messages (if that lock is held past the timeout Asterisk records anyway);
 * 2. the envelope up to msg_id goes into `tmp/XXXXXX`, then one audio file per format
 *    `tmp/XXXXXX.<ext>`, then flag= and duration= are appended;
 * 3. the destination (INBOX, or Urgent) is locked; if that fails the recording is deleted and
 *    the message is lost; otherwise msgnum = highest msgNNNN.txt + 1, the audio is renamed in
 *    (gsm, wav, WAV), then the .txt last, which is chmodded to exactly 0666; then unlock.
 * So a `.txt` with no `.lock` beside it is always a complete message.
 */
export async function leaveVoicemail(spoolDir: string, ref: MailboxRef, opts: LeaveVoicemailOptions = {}): Promise<LeftVoicemail> {
  const mbox = mailboxDir(spoolDir, ref);
  const tmpDir = join(mbox, 'tmp');
  const inbox = join(mbox, 'INBOX');
  const folder = opts.urgent ? 'Urgent' : 'INBOX';
  const dest = join(mbox, folder);
  const lockOpts = opts.lockTimeoutMs === undefined ? {} : { timeoutMs: opts.lockTimeoutMs };
  await mkdir(tmpDir, { recursive: true });
  await mkdir(inbox, { recursive: true });

  try {
    await withFolderLock(inbox, () => lastMessageIndex(inbox), lockOpts);
  } catch (err) {
    if (!(err instanceof LockTimeoutError)) throw err;
  }

  const origtime = opts.origtime ?? Math.floor(Date.now() / 1000);
  const msgId = opts.msgId === null ? '' : (opts.msgId ?? `${origtime}-${hex8(msgIdCounter++)}`);
  const env = opts.envelope ?? {};
  const head: Field[] = [
    ['origmailbox', ref.mailbox],
    ['context', env.context ?? 'vm-leave'],
    ...(opts.macrocontext ? [['macrocontext', ''] as const] : []),
    ['exten', env.exten ?? ref.mailbox],
    ['rdnis', env.rdnis ?? 'unknown'],
    ['priority', env.priority ?? '2'],
    ['callerchan', env.callerchan ?? `Local/${ref.mailbox}@vm-leave-${hex8(channelCounter++)};2`],
    ['callerid', opts.callerid ?? '"Test Caller" <5551234>'],
    ['origdate', formatOrigdate(origtime)],
    ['origtime', String(origtime)],
    ['category', env.category ?? ''],
    ...(opts.msgId === null ? [] : [['msg_id', msgId] as const]),
  ];
  const tail: Field[] = [['flag', opts.urgent ? 'Urgent' : ''], ['duration', String(opts.duration ?? 3)]];
  const encode = (text: string): Buffer => Buffer.from(text, opts.latin1 ? 'latin1' : 'utf8');

  // Recording.
  const tmpTxt = await mkstemp(tmpDir);
  await writeFile(tmpTxt, encode(asteriskText(head)));
  await chmod(tmpTxt, fileMode());
  const exts = (opts.formats ?? ['wav49', 'gsm', 'wav']).map(formatExtension);
  for (const ext of exts) await writeFile(`${tmpTxt}.${ext}`, opts.audio ?? silentAudio(ext), { mode: 0o666 });
  await writeFile(tmpTxt, encode(tail.map(([k, v]) => `${k}=${v}\n`).join('')), { flag: 'a' });

  // Hangup: move the recording into place under the destination lock.
  await mkdir(dest, { recursive: true });
  let unlock: () => Promise<void>;
  try {
    unlock = await lockFolder(dest, lockOpts);
  } catch (err) {
    // "Couldn't lock directory ... Voicemail will be lost.": the recording is deleted.
    for (const p of [tmpTxt, ...exts.map((e) => `${tmpTxt}.${e}`)]) await unlink(p).catch(() => undefined);
    throw err;
  }
  try {
    const msgnum = (await lastMessageIndex(dest)) + 1;
    if (msgnum > MAX_MSGNUM) throw new Error(`${dest} is full`);
    const base = join(dest, msgBase(msgnum));
    const txtPath = `${base}.txt`;
    if (opts.style === 'rewritten') {
      const fields = [...head.filter(([k]) => k !== 'msg_id'), ...tail, ...(opts.msgId === null ? [] : [['msg_id', msgId] as const])];
      await writeFile(tmpTxt, encode(rewrittenText(fields, txtPath, new Date())));
    }
    for (const ext of inWalkOrder(exts)) await rename(`${tmpTxt}.${ext}`, `${base}.${ext}`);
    await rename(tmpTxt, txtPath);
    await chmod(txtPath, 0o666);
    return { folder, msgnum, msgId, txtPath };
  } finally {
    await unlock();
  }
}

// ---------------------------------------------------------------------------------------------
// Moving, deleting, renumbering

async function messageExts(dir: string, msgnum: number): Promise<string[]> {
  const exts = (await filesByMessage(dir)).get(msgnum) ?? [];
  if (!exts.some((e) => e.toLowerCase() === 'txt')) throw new Error(`no message ${msgBase(msgnum)} in ${dir}`);
  return exts;
}

const audioOf = (exts: readonly string[]): string[] => inWalkOrder(exts.filter((e) => e.toLowerCase() !== 'txt'));
const txtOf = (exts: readonly string[]): string => exts.find((e) => e.toLowerCase() === 'txt') ?? 'txt';

/** vm_delete: unlink the .txt first (the message is gone at once), then every audio file. */
async function deleteFiles(dir: string, msgnum: number, exts: readonly string[]): Promise<void> {
  const base = join(dir, msgBase(msgnum));
  await unlink(`${base}.${txtOf(exts)}`);
  for (const ext of audioOf(exts)) await unlink(`${base}.${ext}`);
}

/** Renames a message's files, audio first and the .txt last (rename_file). */
async function renameMessage(dir: string, from: number, to: number, exts: readonly string[]): Promise<void> {
  for (const ext of [...audioOf(exts), txtOf(exts)]) {
    await rename(join(dir, `${msgBase(from)}.${ext}`), join(dir, `${msgBase(to)}.${ext}`));
  }
}

/** Shifts the messages of a folder down to 0..n-1, keeping their order. Caller holds the lock. */
async function renumber(dir: string): Promise<void> {
  const byMessage = await filesByMessage(dir);
  let next = 0;
  for (const n of await messageNumbers(dir)) {
    if (n !== next) await renameMessage(dir, n, next, byMessage.get(n) ?? []);
    next++;
  }
}

export interface MovedMessage {
  readonly folder: SpoolFolder;
  readonly msgnum: number;
}

/**
 * Moves a message the way VoiceMailMain does when it saves one to another folder and closes the
 * mailbox: lock the source, lock the destination inside it, copy (not rename) every file to the
 * destination's max+1 (audio, then the .txt last, byte for byte, so msg_id is kept), unlock the
 * destination, delete the source (.txt first), renumber the source down to contiguous numbers,
 * unlock the source.
 */
export async function moveMessage(spoolDir: string, ref: MailboxRef, from: SpoolFolder, msgnum: number, to: SpoolFolder, opts: LockOptions = {}): Promise<MovedMessage> {
  if (from === to) throw new Error(`cannot move a message from ${from} to itself`);
  const src = folderDir(spoolDir, ref, from);
  const dst = folderDir(spoolDir, ref, to);
  await mkdir(dst, { recursive: true });
  return withFolderLock(src, async () => {
    const exts = await messageExts(src, msgnum);
    const newnum = await withFolderLock(dst, async () => {
      const n = (await lastMessageIndex(dst)) + 1;
      if (n > MAX_MSGNUM) throw new Error(`${dst} is full`);
      for (const ext of [...audioOf(exts), txtOf(exts)]) {
        const target = join(dst, `${msgBase(n)}.${ext}`);
        await copyFile(join(src, `${msgBase(msgnum)}.${ext}`), target);
        // copy() creates the target with AST_FILE_MODE minus umask, not the source's mode.
        await chmod(target, fileMode());
      }
      return n;
    }, opts);
    await deleteFiles(src, msgnum, exts);
    await renumber(src);
    return { folder: to, msgnum: newnum };
  }, opts);
}

/** Listening to a new (or urgent) message and hanging up: it moves to Old (moveheard=yes). */
export function hearMessage(spoolDir: string, ref: MailboxRef, msgnum: number, from: 'INBOX' | 'Urgent' = 'INBOX'): Promise<MovedMessage> {
  return moveMessage(spoolDir, ref, from, msgnum, 'Old');
}

/** VoiceMailMain "save to folder" (key 9), applied when the mailbox is closed. */
export function saveToFolder(spoolDir: string, ref: MailboxRef, from: SpoolFolder, msgnum: number, to: SpoolFolder): Promise<MovedMessage> {
  return moveMessage(spoolDir, ref, from, msgnum, to);
}

/** Deleting a message (backupdeleted=0): lock, .txt then audio, renumber, unlock. */
export async function deleteMessage(spoolDir: string, ref: MailboxRef, folder: SpoolFolder, msgnum: number, opts: LockOptions = {}): Promise<void> {
  const dir = folderDir(spoolDir, ref, folder);
  await withFolderLock(dir, async () => {
    await deleteFiles(dir, msgnum, await messageExts(dir, msgnum));
    await renumber(dir);
  }, opts);
}

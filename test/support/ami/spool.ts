/**
 * What app_voicemail (file storage) reads and changes on disk when it answers AMI, for the test
 * server. Counting and the folder operations follow apps/app_voicemail.c; the lock is the real
 * `.lock` hard-link protocol (test/support/asterisk-spool.ts), so product code that takes the
 * same lock really contends with this server.
 */
import { chmod, copyFile, lstat, mkdir, readFile, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { SPOOL_FOLDERS, type MailboxRef, type SpoolFolder } from '../../../src/spool/types.js';
import { deleteMessage, lastMessageIndex, listFolder, withFolderLock, type ListedMessage } from '../asterisk-spool.js';

export interface Counts {
  readonly urgent: number;
  readonly new: number;
  readonly old: number;
}

/**
 * Asterisk builds paths from these names without checking them. The test server refuses names
 * that would leave the spool and treats them as a mailbox with no messages.
 */
function safeSegment(s: string): boolean {
  return s !== '' && s !== '.' && s !== '..' && !/[/\0]/.test(s);
}

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return []; // opendir() failed: Asterisk counts 0
  }
}

/**
 * __has_voicemail: counts names starting with `msg` (any case) with `txt` at offset 8. With
 * `shortcircuit` (has_voicemail) the first `msg*` name of any kind is enough, audio included.
 */
async function folderCount(spoolDir: string, context: string, mailbox: string, folder: string, shortcircuit = false): Promise<number> {
  if (mailbox === '') return 0;
  const ctx = context === '' ? 'default' : context;
  if (!safeSegment(ctx) || !safeSegment(mailbox)) return 0;
  let n = 0;
  for (const name of await names(join(spoolDir, 'voicemail', ctx, mailbox, folder))) {
    if (name.slice(0, 3).toLowerCase() !== 'msg') continue;
    if (shortcircuit) return 1;
    if (name.slice(8, 11).toLowerCase() === 'txt') n++;
  }
  return n;
}

/**
 * inboxcount2: a spec containing a comma is split on `,` and space and summed; otherwise
 * `mailbox[@context]` with context `default`. So `a@c&b@c` is one mailbox in context `c&b@c`,
 * which does not exist: zeros (fixtures ami/voicemail/33).
 */
export async function inboxCount(spoolDir: string, spec: string): Promise<Counts> {
  if (spec === '') return { urgent: 0, new: 0, old: 0 };
  if (spec.includes(',')) {
    let urgent = 0;
    let fresh = 0;
    let old = 0;
    for (const part of spec.split(/[, ]/)) {
      if (part === '') continue;
      const c = await inboxCount(spoolDir, part);
      urgent += c.urgent;
      fresh += c.new;
      old += c.old;
    }
    return { urgent, new: fresh, old };
  }
  const at = spec.indexOf('@');
  const mailbox = at < 0 ? spec : spec.slice(0, at);
  const context = at < 0 ? 'default' : spec.slice(at + 1);
  return {
    urgent: await folderCount(spoolDir, context, mailbox, 'Urgent'),
    new: await folderCount(spoolDir, context, mailbox, 'INBOX'),
    old: await folderCount(spoolDir, context, mailbox, 'Old'),
  };
}

/**
 * has_voicemail(spec, "INBOX"): split on `,` and `&`; any `msg*` file in INBOX, then in Urgent.
 * This is MailboxStatus's `Waiting` and MessageWaiting's `Waiting`.
 */
export async function hasVoicemail(spoolDir: string, spec: string): Promise<boolean> {
  for (const box of spec.split(/[,&]/)) {
    const at = box.indexOf('@');
    const mailbox = at < 0 ? box : box.slice(0, at);
    const context = at < 0 ? 'default' : box.slice(at + 1);
    if ((await folderCount(spoolDir, context, mailbox, 'INBOX', true)) > 0) return true;
    if ((await folderCount(spoolDir, context, mailbox, 'Urgent', true)) > 0) return true;
  }
  return false;
}

/**
 * Whether `<spool>/voicemail/<context>/<mailbox>` is there, as mailboxDirs would list it, without
 * listing every mailbox (a server with 10,000 answers each action by name). A name that is not one
 * directory entry (empty, a dot name, a slash) is no mailbox.
 */
export async function mailboxDirExists(spoolDir: string, context: string, mailbox: string): Promise<boolean> {
  const entry = (n: string): boolean => n !== '' && n !== '.' && n !== '..' && !/[/\0]/.test(n);
  if (!entry(context) || !entry(mailbox)) return false;
  try {
    await lstat(join(spoolDir, 'voicemail', context, mailbox));
    return true;
  } catch {
    return false;
  }
}

/** Every `<spool>/voicemail/<context>/<mailbox>/` directory. */
export async function mailboxDirs(spoolDir: string): Promise<MailboxRef[]> {
  const out: MailboxRef[] = [];
  for (const context of (await names(join(spoolDir, 'voicemail'))).sort()) {
    for (const mailbox of (await names(join(spoolDir, 'voicemail', context))).sort()) {
      out.push({ context, mailbox });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Folders

export function folderByName(name: string): SpoolFolder | undefined {
  // get_folder_by_name compares case-insensitively.
  return SPOOL_FOLDERS.find((f) => f.toLowerCase() === name.toLowerCase());
}

const pad = (n: number): string => `msg${String(n).padStart(4, '0')}`;

/** Audio in the order Asterisk walks its formats (gsm, wav, wav49), the `.txt` last. */
const AUDIO_WALK = ['gsm', 'wav', 'WAV'];

function walkOrder(files: readonly string[]): string[] {
  const rank = (f: string): number => {
    const ext = f.slice(f.indexOf('.') + 1);
    if (ext.toLowerCase() === 'txt') return AUDIO_WALK.length + 1;
    const i = AUDIO_WALK.indexOf(ext);
    return i < 0 ? AUDIO_WALK.length : i;
  };
  return [...files].sort((a, b) => rank(a) - rank(b));
}

/**
 * open_mailbox: creates the folder, and if the messages are not numbered 0..n-1 (a hand-made
 * move left a gap) resequences them under the folder lock, audio first and the `.txt` last.
 */
export async function openFolder(spoolDir: string, ref: MailboxRef, folder: SpoolFolder): Promise<ListedMessage[]> {
  const dir = join(spoolDir, 'voicemail', ref.context, ref.mailbox, folder);
  await mkdir(dir, { recursive: true });
  let messages = await listFolder(spoolDir, ref, folder);
  if (messages.every((m, i) => m.msgnum === i)) return messages;
  await withFolderLock(dir, async () => {
    const current = await listFolder(spoolDir, ref, folder);
    for (const [i, m] of current.entries()) {
      if (m.msgnum === i) continue;
      for (const file of walkOrder(m.files)) {
        await rename(join(dir, file), join(dir, pad(i) + file.slice(file.indexOf('.'))));
      }
    }
  });
  messages = await listFolder(spoolDir, ref, folder);
  return messages;
}

/**
 * save_to_folder as VoicemailMove uses it: lock the destination, take max+1, *copy* every file
 * (audio, then the `.txt`, which keeps msg_id), unlock. The caller deletes the source.
 */
export async function copyToFolder(spoolDir: string, ref: MailboxRef, from: SpoolFolder, msg: ListedMessage, to: SpoolFolder): Promise<number> {
  const src = join(spoolDir, 'voicemail', ref.context, ref.mailbox, from);
  const dst = join(spoolDir, 'voicemail', ref.context, ref.mailbox, to);
  await mkdir(dst, { recursive: true });
  return withFolderLock(dst, async () => {
    const n = (await lastMessageIndex(dst)) + 1;
    for (const file of walkOrder(msg.files)) {
      const target = join(dst, pad(n) + file.slice(file.indexOf('.')));
      await copyFile(join(src, file), target);
      await chmod(target, 0o666 & ~process.umask());
    }
    return n;
  });
}

/** close_mailbox for one deleted message: lock, `.txt` then audio, renumber the rest, unlock. */
export function removeFromFolder(spoolDir: string, ref: MailboxRef, folder: SpoolFolder, msgnum: number): Promise<void> {
  return deleteMessage(spoolDir, ref, folder, msgnum);
}

// ---------------------------------------------------------------------------------------------
// msgNNNN.txt

/**
 * The `[message]` category of an Asterisk config file (main/config.c): `key=value` or
 * `key = value`, `;` starts a comment unless escaped as `\;`.
 */
export function parseEnvelope(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let inMessage = false;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/(?<!\\);.*$/, '').replace(/\\;/g, ';').trim();
    if (line === '') continue;
    const cat = /^\[([^\]]*)\]/.exec(line);
    if (cat) {
      inMessage = cat[1] === 'message';
      continue;
    }
    if (!inMessage) continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).replace(/^>/, '').trim();
    if (!out.has(key)) out.set(key, value);
  }
  return out;
}

export async function readEnvelope(path: string): Promise<Map<string, string>> {
  // latin1: the bytes of the file go onto the wire unchanged.
  return parseEnvelope(await readFile(path, 'latin1'));
}

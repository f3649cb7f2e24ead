/**
 * The mailboxes that have a directory in the spool: `<spool>/voicemail/<context>/<mailbox>/`.
 * voicemail.conf stays the list of mailboxes vmbridge serves; this shows what is on disk (for checks
 * and for spotting boxes that are not configured). Directories whose names are not safe spool names,
 * and symbolic links, are reported rather than returned.
 */
import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SpoolError } from '../errors.js';
import { isSafeName } from './names.js';
import type { MailboxRef, SpoolProblem } from './types.js';

export async function listSpoolMailboxes(spoolDir: string): Promise<{ refs: MailboxRef[]; problems: SpoolProblem[] }> {
  const root = resolve(spoolDir, 'voicemail');
  const refs: MailboxRef[] = [];
  const problems: SpoolProblem[] = [];
  const contexts = await listDir(root);
  if (contexts === undefined) {
    problems.push({ path: root, problem: 'does not exist: no voicemail has been stored in this spool yet, or the spool directory is wrong' });
    return { refs, problems };
  }
  const inContexts = await Promise.all(
    sortByName(contexts).map(async (ctx): Promise<MailboxRef[]> => {
      const ctxPath = join(root, ctx.name);
      if (!usable(ctx, ctxPath, 'context', problems)) return [];
      const boxes = await listDir(ctxPath);
      if (boxes === undefined) return [];
      const found: MailboxRef[] = [];
      for (const box of sortByName(boxes)) {
        if (usable(box, join(ctxPath, box.name), 'mailbox', problems)) found.push({ context: ctx.name, mailbox: box.name });
      }
      return found;
    }),
  );
  for (const list of inContexts) refs.push(...list);
  return { refs, problems };
}

/** A directory with a safe name. Plain files (Asterisk keeps none at these levels) are skipped silently. */
function usable(entry: Dirent, path: string, what: 'context' | 'mailbox', problems: SpoolProblem[]): boolean {
  if (entry.isSymbolicLink()) {
    problems.push({ path, problem: `${what} directory is a symbolic link; not followed` });
    return false;
  }
  if (!entry.isDirectory()) return false;
  if (!isSafeName(entry.name)) {
    problems.push({ path, problem: `${what} name ${JSON.stringify(entry.name)} is not a safe spool name (letters, digits and . _ - + only); skipped` });
    return false;
  }
  return true;
}

function sortByName(entries: Dirent[]): Dirent[] {
  return [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function listDir(path: string): Promise<Dirent[] | undefined> {
  try {
    return await readdir(path, { withFileTypes: true });
  } catch (err) {
    if (typeof err === 'object' && err !== null && 'code' in err && (err as { code?: unknown }).code === 'ENOENT') return undefined;
    const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code?: unknown }).code) : String(err);
    throw new SpoolError(path, `cannot be listed: ${code}`, { cause: err });
  }
}

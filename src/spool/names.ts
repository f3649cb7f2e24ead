/**
 * Context and mailbox names become directory names under `<spool>/voicemail/`. Asterisk itself does
 * not check them (app_voicemail builds the path with `snprintf("%s%s/%s", ...)`), so a name such as
 * `..` or `a/b` in voicemail.conf, a job payload or a CLI argument could point vmbridge at any
 * directory. Every name is checked here before it touches a path.
 */
import { relative, resolve, isAbsolute, sep } from 'node:path';
import { SpoolError, UnsafeNameError } from '../errors.js';
import type { MailboxRef } from './types.js';

/** Longer than any real extension or context name; keeps paths and Redis keys bounded. */
export const MAX_NAME_LENGTH = 80;

const SAFE_NAME = /^[A-Za-z0-9_.+-]+$/;

/** Letters, digits and `_ . + -` only, 1 to 80 characters, and not `.` or `..`. */
export function isSafeName(s: string): boolean {
  return (
    typeof s === 'string' &&
    s.length > 0 &&
    s.length <= MAX_NAME_LENGTH &&
    SAFE_NAME.test(s) &&
    s !== '.' &&
    s !== '..'
  );
}

/**
 * A voicemail server's name (settings `servers[].name`): it is part of mailbox names, Redis keys
 * and Message-IDs, so it is kept to letters, digits, `_` and `-`, 1 to 32 characters.
 */
export const SERVER_NAME = /^[A-Za-z0-9_-]{1,32}$/;

export function isServerName(s: string): boolean {
  return typeof s === 'string' && SERVER_NAME.test(s);
}

export function assertSafeName(what: 'context' | 'mailbox', s: string): void {
  if (!isSafeName(s)) throw new UnsafeNameError(what, s);
}

/**
 * `<spoolDir>/voicemail/<context>/<mailbox>`, Asterisk's VM_SPOOL_DIR layout. The names are
 * validated, and the resolved path is checked to lie inside `<spoolDir>/voicemail` as a second line
 * of defence should the name rules ever be loosened.
 */
export function mailboxDir(spoolDir: string, ref: MailboxRef): string {
  assertSafeName('context', ref.context);
  assertSafeName('mailbox', ref.mailbox);
  const root = resolve(spoolDir, 'voicemail');
  const dir = resolve(root, ref.context, ref.mailbox);
  const rel = relative(root, dir);
  if (rel === '' || isAbsolute(rel) || rel === '..' || rel.startsWith(`..${sep}`) || rel.split(sep).length !== 2) {
    throw new SpoolError(dir, `resolves outside ${root}`);
  }
  return dir;
}

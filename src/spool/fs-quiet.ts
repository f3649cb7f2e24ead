/**
 * Small synchronous file-system steps that the spool's writers and lock code take under a folder
 * lock, where a missing file is an answer, not an error: each says what it found instead of throwing.
 */
import { lstatSync, unlinkSync, type Stats } from 'node:fs';

/** The entry itself (a symbolic link is not followed), or undefined when there is none. */
export function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/** True when the name was removed; false when it could not be (gone already, or refused). */
export function unlinkQuietly(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Node's errno code of an error (ENOENT, EEXIST, ...), if it has one. */
export function errnoOf(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** The errno code, else the message: short enough for a log line. */
export function errText(err: unknown): string {
  return errnoOf(err) ?? (err instanceof Error ? err.message : String(err));
}

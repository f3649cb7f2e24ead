/**
 * How a voicemail email leaves its folder, decided from the setting and what the server offers.
 *
 * A bare EXPUNGE is never among the choices: it removes every message flagged \Deleted in the
 * folder, and in a shared INBOX most of those are the user's own mail. Without UIDPLUS (UID
 * EXPUNGE) and MOVE the only safe thing left is the \Deleted flag itself.
 */
import type { ServerCapabilities } from './capabilities.js';

export type DeleteMode = 'auto' | 'expunge' | 'trash';

export type DeleteStrategy =
  /** UID STORE +FLAGS (\Deleted), then UID EXPUNGE of that UID (RFC 4315). */
  | 'uid-expunge'
  /** UID MOVE to the trash folder (RFC 6851). */
  | 'move-to-trash'
  /** UID COPY to the trash folder, then UID EXPUNGE of the original: a MOVE without MOVE. */
  | 'copy-to-trash'
  /** UID STORE +FLAGS (\Deleted) and nothing else: the user's client expunges it some day. */
  | 'flag-deleted';

export type DeleteCapabilities = Pick<ServerCapabilities, 'uidplus' | 'move'>;

export function deleteStrategy(mode: DeleteMode, caps: DeleteCapabilities): DeleteStrategy {
  switch (mode) {
    case 'auto':
      return caps.uidplus ? 'uid-expunge' : caps.move ? 'move-to-trash' : 'flag-deleted';
    case 'expunge':
      return caps.uidplus ? 'uid-expunge' : 'flag-deleted';
    case 'trash':
      return caps.move ? 'move-to-trash' : caps.uidplus ? 'copy-to-trash' : 'flag-deleted';
  }
}

/**
 * The way to delete when the trash folder cannot be used: the email already sits in it, or the
 * folder cannot be created, or the server refuses the message there (a full trash, no rights).
 */
export function strategyWithoutTrash(caps: DeleteCapabilities): DeleteStrategy {
  return caps.uidplus ? 'uid-expunge' : 'flag-deleted';
}

export function usesTrash(strategy: DeleteStrategy): boolean {
  return strategy === 'move-to-trash' || strategy === 'copy-to-trash';
}

/** What happens to a deleted voicemail email, in words an administrator reads (doctor, logs). */
export function describeStrategy(strategy: DeleteStrategy, trash: string): string {
  switch (strategy) {
    case 'uid-expunge':
      return 'deleted voicemail emails are removed with UID EXPUNGE of exactly their UID';
    case 'move-to-trash':
      return `deleted voicemail emails are moved to ${JSON.stringify(trash)} with UID MOVE`;
    case 'copy-to-trash':
      return `deleted voicemail emails are copied to ${JSON.stringify(trash)}, then removed with UID EXPUNGE of exactly their UID`;
    case 'flag-deleted':
      return 'deleted voicemail emails are only flagged \\Deleted, which mail clients hide or strike through until the user expunges them';
  }
}

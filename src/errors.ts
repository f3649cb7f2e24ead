/**
 * Typed errors. Each names what is at fault (a file, a setting, a mailbox) and, where it can,
 * what to do about it. `code` is stable and machine-readable.
 */
export class VmbridgeError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A settings file or environment variable is missing, malformed or out of range. */
export class ConfigError extends VmbridgeError {
  readonly file: string | undefined;
  readonly key: string | undefined;
  constructor(message: string, where: { file?: string; key?: string } = {}, options?: { cause?: unknown }) {
    super('CONFIG', message, options);
    this.file = where.file;
    this.key = where.key;
  }
}

/** A spool file or path could not be used. The file is named; nothing is changed on disk. */
export class SpoolError extends VmbridgeError {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('SPOOL', `${path}: ${message}`, options);
    this.path = path;
  }
}

/** A context or mailbox name that cannot be used as a spool path segment (`..`, `/`, NUL, ...). */
export class UnsafeNameError extends VmbridgeError {
  readonly value: string;
  constructor(what: string, value: string) {
    super('UNSAFE_NAME', `${what} ${JSON.stringify(value)} is not a safe spool name (letters, digits and . _ - + only; not . or ..)`);
    this.value = value;
  }
}

/** An IMAP command failed in a way the caller should see. */
export class ImapError extends VmbridgeError {
  readonly account: string;
  constructor(account: string, message: string, options?: { cause?: unknown }) {
    super('IMAP', `${account}: ${message}`, options);
    this.account = account;
  }
}

/**
 * The server refused this account's credentials or token recently; it is not tried again before
 * `retryAt`, so a wrong password does not become a login storm (and a locked account).
 */
export class ImapAuthBackoffError extends ImapError {
  readonly retryAt: Date;
  constructor(account: string, retryAt: Date, reason: string) {
    super(account, `authentication failed (${reason}); not tried again before ${retryAt.toISOString()}`);
    this.retryAt = retryAt;
  }
}

/** A reconcile refused to go on because its plan looked dangerous (for example, mass deletion). */
export class SafetyStopError extends VmbridgeError {
  constructor(message: string) {
    super('SAFETY_STOP', message);
  }
}

/** The spool kept changing while it was read (Asterisk renumbering or moving): try again shortly. */
export class SpoolBusyError extends VmbridgeError {
  constructor(what: string) {
    super('SPOOL_BUSY', `${what}: the spool kept changing while it was read; the reconcile is retried`);
  }
}

/**
 * A caller is in VoiceMailMain for the mailbox (Asterisk keeps message numbers in memory then), or
 * whether one is cannot be told right now: the spool change waits and the reconcile is retried.
 */
export class SpoolChangeDeferredError extends VmbridgeError {
  constructor(what: string, why: string) {
    super('SPOOL_CHANGE_DEFERRED', `${what}: ${why}; nothing was changed, the reconcile is retried`);
  }
}

/** The audio tool is missing, cannot do what is asked, or failed on one recording. */
export class AudioToolError extends VmbridgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('AUDIO', message, options);
  }
}

/**
 * A transcription engine, its model or the audio preparation cannot be used (found at start: the
 * stage is then off and voicemail still flows), or failed on one recording (that email says so).
 * `setting` names the settings key at fault, where there is one.
 */
export class TranscriptionError extends VmbridgeError {
  readonly setting: string | undefined;
  constructor(message: string, where: { setting?: string } = {}, options?: { cause?: unknown }) {
    super('TRANSCRIPTION', message, options);
    this.setting = where.setting;
  }
}

/**
 * Structured logging: one JSON object per line (pino), on standard error unless told otherwise, so
 * journald, `docker logs` and log shippers take it as is and standard output stays free for CLI
 * output. Per-mailbox context goes in a child logger: `log.child({ mailbox: '1000@default' })`.
 */
import { pino } from 'pino';
import type { Logger as PinoLogger, LevelWithSilentOrString } from 'pino';

export type Logger = PinoLogger;

/**
 * Keys whose values never reach a log line, whatever object they sit in. Passwords travel through
 * settings, voicemail.conf options, IMAP auth objects ({ user, pass }) and HTTP headers, so a stray
 * `log.debug({ settings })` must not leak one.
 */
const SECRET_KEYS = [
  'password',
  'pass',
  'secret',
  'masterPassword',
  'imappassword',
  'authpassword',
  'accessToken',
  'token',
  'authorization',
  'Authorization',
] as const;

/** Deepest nesting redacted: `settings.imap.login.masterPassword` is four levels down. */
const REDACT_DEPTH = 5;

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const key of SECRET_KEYS) {
    for (let depth = 0; depth < REDACT_DEPTH; depth++) paths.push(`${'*.'.repeat(depth)}${key}`);
  }
  return paths;
}

export interface LoggerOptions {
  /** Where the JSON lines go; standard error by default. Tests pass a memory stream. */
  readonly destination?: NodeJS.WritableStream;
  /** Shown as `name` on every line (e.g. the worker kind). */
  readonly name?: string;
}

export function createLogger(level: LevelWithSilentOrString, opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level,
      ...(opts.name !== undefined ? { name: opts.name } : {}),
      redact: { paths: redactPaths(), censor: '[redacted]' },
      // Level names and ISO times read better than numbers and epoch milliseconds when an
      // administrator looks at the raw lines.
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    // Synchronous writes to fd 2: the last lines before a crash or process.exit are not lost.
    opts.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

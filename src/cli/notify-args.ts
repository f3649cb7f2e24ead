/**
 * Arguments of `vmbridge notify`, a drop-in for voicemail.conf's `externnotify`. Asterisk runs the
 * command as `<cmd> <context> <mailbox> <new> <old> <urgent>` through /bin/sh, in two shapes:
 *
 *   default 1000 2 0 0             after a message is left, moved or removed
 *   "" 1000@default 1 1 0          after a poll or VoicemailRefresh found a change
 *
 * (the shell turns `""` into an empty argument). The counts are informative only: Asterisk's `new`
 * leaves out urgent messages, and vmbridge recounts from the spool anyway.
 */
import { VmbridgeError } from '../errors.js';
import { assertSafeName } from '../spool/names.js';
import type { MailboxRef } from '../spool/types.js';

export interface NotifyCounts {
  readonly new: number;
  readonly old: number;
  readonly urgent: number;
}

export interface NotifyArgs {
  readonly ref: MailboxRef;
  /** Present only when all three counts were given as whole numbers >= 0. */
  readonly counts?: NotifyCounts;
}

export const NOTIFY_USAGE = [
  'vmbridge notify <context> <mailbox> [<new> <old> <urgent>]',
  'vmbridge notify "" <mailbox>@<context> [<new> <old> <urgent>]',
  'vmbridge notify <mailbox>@<context> [<new> <old> <urgent>]',
].join('\n  ');

/** The arguments of `vmbridge notify` match none of the accepted shapes. */
export class NotifyArgsError extends VmbridgeError {
  readonly args: readonly string[];
  constructor(problem: string, args: readonly string[]) {
    super('USAGE', `notify: ${problem} (got ${JSON.stringify(args)}); accepted:\n  ${NOTIFY_USAGE}`);
    this.args = args;
  }
}

const COUNT = /^\d{1,9}$/;

function countsOf(rest: readonly string[]): NotifyCounts | undefined {
  const [n, o, u] = rest;
  if (rest.length !== 3 || n === undefined || o === undefined || u === undefined) return undefined;
  if (!COUNT.test(n) || !COUNT.test(o) || !COUNT.test(u)) return undefined;
  return { new: Number(n), old: Number(o), urgent: Number(u) };
}

function isEmptyContext(s: string): boolean {
  // A wrapper that does not go through a shell passes Asterisk's `""` literally.
  return s === '' || s === '""';
}

function splitQualified(s: string, argv: readonly string[]): MailboxRef {
  const at = s.indexOf('@');
  const mailbox = s.slice(0, at);
  const context = s.slice(at + 1);
  if (mailbox === '' || context === '') throw new NotifyArgsError(`${JSON.stringify(s)} is not <mailbox>@<context>`, argv);
  return { context, mailbox };
}

export function parseNotifyArgs(argv: readonly string[]): NotifyArgs {
  const [first, second] = argv;
  if (first === undefined) throw new NotifyArgsError('no mailbox given', argv);

  let ref: MailboxRef;
  let rest: readonly string[];
  if (first.includes('@')) {
    ref = splitQualified(first, argv);
    rest = argv.slice(1);
  } else if (isEmptyContext(first)) {
    if (second === undefined || !second.includes('@')) {
      throw new NotifyArgsError('an empty context must be followed by <mailbox>@<context>', argv);
    }
    ref = splitQualified(second, argv);
    rest = argv.slice(2);
  } else {
    if (second === undefined || second === '') throw new NotifyArgsError(`context ${JSON.stringify(first)} given without a mailbox`, argv);
    if (second.includes('@')) {
      // `default 1000@default` is unambiguous; `default 1000@other` is not.
      const q = splitQualified(second, argv);
      if (q.context !== first) throw new NotifyArgsError(`context ${JSON.stringify(first)} does not match ${JSON.stringify(second)}`, argv);
      ref = q;
    } else {
      ref = { context: first, mailbox: second };
    }
    rest = argv.slice(2);
  }
  if (rest.length > 3) throw new NotifyArgsError(`too many arguments (${argv.length})`, argv);

  // Asterisk passes these names to the shell unescaped; they become spool paths and Redis keys.
  assertSafeName('context', ref.context);
  assertSafeName('mailbox', ref.mailbox);

  const counts = countsOf(rest);
  return counts ? { ref, counts } : { ref };
}

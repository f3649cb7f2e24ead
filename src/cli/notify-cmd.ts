/**
 * `vmbridge notify`, on bin.ts's fast path: it imports node: builtins and small modules only, so
 * that Asterisk, which runs externnotify synchronously, waits about as long as Node takes to start.
 * Only `--config` loads the settings (and with them zod and yaml), in notify-redis.ts.
 */
import { parseArgs } from 'node:util';
import { VmbridgeError } from '../errors.js';
import { sendNotify, type NotifyOutcome } from '../notify/client.js';
import { DEFAULT_NOTIFY_SOCKET, NOTIFY_SOCKET_ENV } from '../notify/protocol.js';
import { mailboxKey, type MailboxRef } from '../spool/types.js';
import { NotifyArgsError, parseNotifyArgs } from './notify-args.js';
import { isServerName } from '../spool/names.js';

/** As config/servers.ts's MAIN_SERVER, which this fast path may not import (it brings the settings). */
const MAIN_SERVER_NAME = 'main';
import { NOTIFY_HELP } from './notify-help.js';

/** Connect, send and answer together; longer means a service too busy to be waited for. */
export const NOTIFY_TIMEOUT_MS = 200;

export interface NotifyIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const processIo: NotifyIo = {
  env: process.env,
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** The socket `vmbridge notify` uses without --config: --socket, then the environment, then the default. */
export function notifySocketPath(socketArg: string | undefined, env: NodeJS.ProcessEnv): string {
  if (socketArg !== undefined && socketArg !== '') return socketArg;
  const fromEnv = env[NOTIFY_SOCKET_ENV];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_NOTIFY_SOCKET;
}

/**
 * One line on standard error for anything but success, and the exit code. Only a refusal by the
 * service is an error: in every other case the watcher and the sweep still find the change.
 */
export function describeOutcome(o: NotifyOutcome, path: string, ref: MailboxRef): { code: number; line?: string } {
  const key = mailboxKey(ref);
  const later = `the spool watcher and the sweep will pick up ${key}`;
  switch (o.kind) {
    case 'queued':
      return { code: 0 };
    case 'unknown':
      return { code: 0, line: `the running vmbridge has no mailbox ${key} (not in its voicemail.conf, or without an IMAP account); nothing queued` };
    case 'refused':
      return { code: 1, line: `the running vmbridge refused ${key}: ${o.reason}` };
    case 'timeout':
      return { code: 0, line: `no answer from ${path} within ${o.ms} ms; ${later}` };
    case 'unreachable': {
      const why =
        o.code === 'ENOENT' ? 'no such socket: is vmbridge running, with this notify.socket?' :
        o.code === 'ECONNREFUSED' ? 'nothing listens there: is vmbridge running?' :
        o.code === 'EACCES' ? 'permission denied: the user running this command must be in the socket\'s group (docs/notify.md)' :
        o.code;
      return { code: 0, line: `vmbridge not reached at ${path} (${why}); ${later}` };
    }
  }
}

/** The fast path's form of main.ts's report(): usage errors exit 2, other vmbridge errors 1. */
function reportError(err: unknown, io: NotifyIo): number {
  if (err instanceof VmbridgeError) {
    io.stderr(`vmbridge: ${err.message}\n`);
    return err.code === 'USAGE' ? 2 : 1;
  }
  if (err instanceof Error && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    io.stderr(`vmbridge: ${err.message}\nTry: vmbridge notify --help\n`);
    return 2;
  }
  throw err;
}

/** --server names a voicemail server of the settings' servers list (not main: that is the default). */
function withServer(ref: MailboxRef, server: string | undefined, args: readonly string[]): MailboxRef {
  if (server === undefined || server === MAIN_SERVER_NAME) return ref;
  if (!isServerName(server)) throw new NotifyArgsError(`--server ${JSON.stringify(server)} is not a server name (letters, digits, _ and -, 1 to 32)`, args);
  return { server, context: ref.context, mailbox: ref.mailbox };
}

export async function runNotify(args: readonly string[], io: NotifyIo = processIo): Promise<number> {
  let ref: MailboxRef;
  let socketArg: string | undefined;
  let config: string | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        socket: { type: 'string', short: 's' },
        config: { type: 'string', short: 'c' },
        server: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.stdout(`${NOTIFY_HELP}\n`);
      return 0;
    }
    ref = withServer(parseNotifyArgs(positionals).ref, values.server, args);
    socketArg = values.socket;
    config = values.config;
  } catch (err) {
    return reportError(err, io);
  }

  if (config !== undefined) {
    const { notifyWithSettings } = await import('./notify-redis.js');
    try {
      return await notifyWithSettings({ file: config, socketArg, ref, io });
    } catch (err) {
      return reportError(err, io);
    }
  }
  const path = notifySocketPath(socketArg, io.env);
  const told = describeOutcome(await sendNotify(path, ref, NOTIFY_TIMEOUT_MS), path, ref);
  if (told.line) io.stderr(`vmbridge notify: ${told.line}\n`);
  return told.code;
}

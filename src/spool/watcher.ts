/**
 * Spool watcher: one recursive inotify watch on <spool>/voicemail. Asterisk renames the audio files
 * into a folder first and the msgNNNN.txt last, so a .txt appearing, moving or going away is the
 * signal that a mailbox changed. Events are debounced per mailbox (trailing edge), so the renames of
 * one message, or a burst of messages, give one call.
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { Logger } from '../log.js';
import { isSafeName } from './names.js';
import { isSyncedSpoolFolder, mailboxKey, type MailboxRef } from './types.js';

export interface SpoolWatcher {
  close(): void;
}

const MESSAGE_TXT = /^msg\d{4}\.txt$/;

/** `<context>/<mailbox>/<Folder>/msgNNNN.txt` relative to the voicemail dir, else undefined. */
export function mailboxOfPath(relative: string): MailboxRef | undefined {
  const parts = relative.split(sep);
  if (parts.length !== 4) return undefined;
  const [context, mailbox, folder, file] = parts as [string, string, string, string];
  if (!isSafeName(context) || !isSafeName(mailbox) || !isSyncedSpoolFolder(folder) || !MESSAGE_TXT.test(file)) return undefined;
  return { context, mailbox };
}

export function watchSpool(
  spoolDir: string,
  onChange: (ref: MailboxRef, path: string) => void,
  opts: { debounceMs?: number; log?: Logger; retryMs?: number } = {},
): SpoolWatcher {
  const root = join(spoolDir, 'voicemail');
  const debounceMs = opts.debounceMs ?? 15;
  const timers = new Map<string, NodeJS.Timeout>();
  let watcher: FSWatcher | undefined;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;

  const fire = (ref: MailboxRef, path: string): void => {
    const key = mailboxKey(ref);
    const pending = timers.get(key);
    if (pending) clearTimeout(pending);
    timers.set(key, setTimeout(() => {
      timers.delete(key);
      onChange(ref, path);
    }, debounceMs));
  };

  const start = async (): Promise<void> => {
    if (closed) return;
    try {
      if (!(await stat(root)).isDirectory()) throw new Error(`${root} is not a directory`);
      watcher = watch(root, { recursive: true }, (_event, filename) => {
        if (!filename) return;
        const ref = mailboxOfPath(filename.toString());
        if (ref) fire(ref, join(root, filename.toString()));
      });
      watcher.on('error', (err) => {
        opts.log?.warn({ dir: root, err: err.message }, 'spool watcher failed; watching again');
        watcher?.close();
        watcher = undefined;
        schedule();
      });
      opts.log?.debug({ dir: root }, 'watching the spool');
    } catch (err) {
      opts.log?.warn({ dir: root, err: (err as Error).message }, 'cannot watch the spool yet (the periodic sweep still runs); retrying');
      schedule();
    }
  };
  const schedule = (): void => {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      void start();
    }, opts.retryMs ?? 5_000);
    retry.unref();
  };
  void start();

  return {
    close() {
      closed = true;
      if (retry) clearTimeout(retry);
      watcher?.close();
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
  };
}

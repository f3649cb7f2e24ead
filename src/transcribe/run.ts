/**
 * Runs one engine or audio program, as src/audio/sox.ts does: execFile (no shell), a bounded
 * output, killed with SIGKILL when its time is up or the email stopped waiting for it. An engine
 * runs under `nice`, so a transcript never takes the CPU from the rest of the service.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { TranscriptionError } from '../errors.js';

export interface RunOptions {
  /** Aborted: the process is killed at once. */
  readonly signal: AbortSignal;
  /** nice -n of the process; 0 or absent: as it is. */
  readonly nice?: number;
  /** Bytes of output kept at most; more is a failure (an engine gone wrong, not a transcript). */
  readonly maxBuffer?: number;
  readonly input?: Buffer;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

export function runProgram(command: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const [file, argv] = opts.nice ? ['nice', ['-n', String(opts.nice), command, ...args]] : [command, [...args]];
  return new Promise((resolve, reject) => {
    const child = execFile(file, argv, { signal: opts.signal, killSignal: 'SIGKILL', maxBuffer: opts.maxBuffer ?? 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        if (opts.signal.aborted) {
          reject(new TranscriptionError(`${command} was stopped: the email no longer waits for it`, {}, { cause: err }));
          return;
        }
        const last = (stderr || err.message).trim().split('\n').slice(-2).join(' ');
        reject(new TranscriptionError(`${command} failed: ${last}`, {}, { cause: err }));
        return;
      }
      resolve({ stdout, stderr });
    });
    // A program that stops reading early closes the pipe; its exit status tells why.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input);
  });
}

/** The program's path: as given when it has a slash, else the first executable on PATH. */
export async function findProgram(command: string, path = process.env['PATH'] ?? ''): Promise<string | undefined> {
  const candidates = command.includes('/') ? [command] : path.split(delimiter).filter((d) => d !== '').map((d) => join(d, command));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      if ((await stat(c)).isFile()) return c;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** Throws TranscriptionError naming the setting when `path` cannot be read (a file, or a folder when `folder`). */
export async function assertReadable(path: string, setting: string, what: string, folder = false): Promise<void> {
  try {
    await access(path, constants.R_OK | (folder ? constants.X_OK : 0));
    const s = await stat(path);
    if (folder ? !s.isDirectory() : !s.isFile()) throw new Error(folder ? 'not a folder' : 'not a file');
  } catch (cause) {
    const why = (cause as { code?: string }).code === 'ENOENT' ? 'does not exist' : (cause as { code?: string }).code === 'EACCES' ? 'cannot be read by this user' : cause instanceof Error ? cause.message : String(cause);
    throw new TranscriptionError(`${setting}: the ${what} ${path} ${why}; install it or correct the path (vmbridge never downloads a model)`, { setting }, { cause });
  }
}

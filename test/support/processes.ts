/**
 * Small helpers shared by the private test servers (Dovecot, Redis): find the installed program,
 * run it, watch a daemon by PID, and make sure no daemon outlives the test process.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Daemons go to sbin, which is often not on a normal user's PATH. */
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin'];

export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The program's path, or an error that says how to install it. Tests never skip silently. */
export function requireExecutable(name: string, pkg: string): string {
  const found = findExecutable(name);
  if (!found) {
    throw new Error(`${name} is not installed (Debian package ${pkg}); run scripts/install-deps.sh first`);
  }
  return found;
}

export interface RunResult {
  readonly code: number;
  /** stdout and stderr together. */
  readonly output: string;
}

/**
 * Runs a program that daemonizes and waits for the launcher to exit. Output goes to a file, not a
 * pipe: the daemon inherits the descriptors, and a pipe would stay open for the daemon's lifetime.
 */
export async function runDaemonLauncher(file: string, args: readonly string[], outputPath: string, timeoutMs = 10_000): Promise<RunResult> {
  const out = await open(outputPath, 'w');
  try {
    const child = spawn(file, [...args], { stdio: ['ignore', out.fd, out.fd] });
    const code = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${file} did not return within ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (exitCode, sig) => {
        clearTimeout(timer);
        resolve(exitCode ?? (sig ? 128 : 1));
      });
    });
    return { code, output: await readFile(outputPath, 'utf8').catch(() => '') };
  } finally {
    await out.close();
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else. Only ESRCH means gone.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A daemon that exited stays a zombie until its parent (usually init) reaps it, and some
  // init processes reap only every second or two. A zombie has finished: count it as gone.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return !existsSync('/proc/self/stat');
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until the PID has exited; false if it is still there after `timeoutMs`. */
export async function waitUntilGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/** Sends `signal` to exactly this PID; a PID that is already gone is fine. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * TERM, wait up to `timeoutMs`, then KILL as a last resort. Returns how long it took.
 * Only the given PID is signalled: a daemon's master takes its own children down.
 */
export async function stopPid(pid: number, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  signal(pid, 'SIGTERM');
  if (!(await waitUntilGone(pid, timeoutMs))) {
    signal(pid, 'SIGKILL');
    if (!(await waitUntilGone(pid, 2_000))) throw new Error(`process ${pid} did not exit`);
  }
  return Date.now() - started;
}

/**
 * A scratch folder with a short path. Dovecot's unix sockets live below it, and socket paths
 * are limited to ~107 bytes, so a long TMPDIR is not used.
 */
export function shortTempDir(prefix: string): Promise<string> {
  const base = tmpdir().length <= 40 ? tmpdir() : '/tmp';
  return mkdtemp(join(base, prefix));
}

/** Daemons still running when the process exits (a test forgot stop(), or threw first). */
const leftovers = new Map<number, string>();
let exitHookInstalled = false;

export function killOnExit(pid: number, dir: string): void {
  leftovers.set(pid, dir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: signal by PID and remove the folder best-effort.
  process.on('exit', () => {
    for (const [leftPid, leftDir] of leftovers) {
      try {
        process.kill(leftPid, 'SIGTERM');
      } catch {
        // already gone
      }
      try {
        rmSync(leftDir, { recursive: true, force: true, maxRetries: 2 });
      } catch {
        // the daemon may still be writing its log; a stray temp folder is harmless
      }
    }
  });
}

export function forgetOnExit(pid: number): void {
  leftovers.delete(pid);
}

/** stop() for a server this process started: its PID only, once, then its folder. */
export function stopServerOnce(pid: number, dir: string): () => Promise<void> {
  let stopped = false;
  return async () => {
    if (stopped) return;
    stopped = true;
    await stopPid(pid);
    forgetOnExit(pid);
    await rm(dir, { recursive: true, force: true });
  };
}

/** The PID in a daemon's pidfile, or undefined while the file is missing or not yet written. */
export async function readPidFile(path: string): Promise<number | undefined> {
  const pid = Number.parseInt((await readFile(path, 'utf8').catch(() => '')).trim(), 10);
  return pid > 0 ? pid : undefined;
}

/** Waits for a daemon's pidfile to hold a PID. */
export async function waitForPidFile(path: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pid = await readPidFile(path);
    if (pid !== undefined) return pid;
    if (Date.now() > deadline) throw new Error(`${path} did not appear`);
    await sleep(10);
  }
}

/** The last lines of a log file, for an error message ('' when there is none). */
export async function tailOf(path: string, lines = 20): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').slice(-lines).join('\n');
}

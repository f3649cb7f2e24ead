/**
 * What the benchmarks share: percentiles, progress on stderr, an IMAP session as a mail client
 * opens it, and vmbridge built and run as a real process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ImapFlow } from 'imapflow';

export const ROOT = resolve(import.meta.dirname, '..');

export interface Stats { n: number; p50: number; p95: number; p99: number; max: number; mean: number }

export function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  const round = (x: number): number => Math.round(x * 10) / 10;
  return { n: s.length, p50: round(at(0.5)), p95: round(at(0.95)), p99: round(at(0.99)), max: round(s[s.length - 1] ?? NaN), mean: round(s.reduce((a, b) => a + b, 0) / s.length) };
}

export function progress(what: string, i: number, n: number): void {
  if (process.stderr.isTTY) process.stderr.write(`\r${what}: ${i}/${n}   `);
  else if (i === n || i % Math.max(1, Math.floor(n / 5)) === 0) process.stderr.write(`${what}: ${i}/${n}\n`);
  if (process.stderr.isTTY && i === n) process.stderr.write('\n');
}

export async function open(port: number, user: string): Promise<ImapFlow> {
  const c = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass: `pw-${user}` }, logger: false, disableAutoIdle: true });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

export interface Vmbridge { child: ChildProcess; ready: Promise<void> }

export function startVmbridge(configPath: string, logPath: string): Vmbridge {
  // BENCH_PROFILE=<folder>: vmbridge writes a V8 CPU profile there (open it in Chrome's DevTools).
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${resolve(process.env.BENCH_PROFILE)}`] : [];
  const child = spawn(process.execPath, [...profile, join(ROOT, 'dist/src/cli/bin.js'), 'run', '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const ready = new Promise<void>((resolveReady, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('vmbridge started')) resolveReady();
    });
    child.once('exit', (code) => reject(new Error(`vmbridge exited with ${code}:\n${log.slice(-2000)}`)));
  });
  child.once('exit', () => void writeFile(logPath, log));
  return { child, ready };
}

export function peakRssMiB(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((s) => Math.round(Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024));
}


/**
 * A linked pair of pseudo-terminals made by socat, standing in for a serial cable: what is written
 * to `a` comes out of `b` and back. socat is started here and ended by its PID; ending it closes
 * both terminals (and socat removes the links), which is how a test unplugs the cable.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants, open } from 'node:fs';
import { ReadStream } from 'node:tty';
import { requireExecutable } from './processes.js';
import { waitFor } from './wait.js';

export interface PtyPair {
  /** The end vmbridge opens (the switch's serial port, as smdi.conf names it). */
  readonly a: string;
  /** The switch's end. */
  readonly b: string;
  readonly pid: number;
  /** Ends socat by its PID and waits for it to exit. */
  stop(): Promise<void>;
}

export async function startPtyPair(a: string, b: string): Promise<PtyPair> {
  const socat = requireExecutable('socat', 'socat');
  const child: ChildProcess = spawn(socat, ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString('utf8');
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.pid === undefined) throw new Error('socat did not start');
  const pid = child.pid;
  await waitFor(`socat's pty links ${a} and ${b} (${log.trim()})`, () => log.includes('starting data transfer loop') && existsSync(a) && existsSync(b));
  return {
    a,
    b,
    pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(pid, 'SIGTERM');
      await exited;
    },
  };
}

/** Everything that arrives at one end of the pair, kept in order; `write` answers as the switch. */
export interface PtyEnd {
  readonly bytes: () => Buffer;
  write(text: string): Promise<void>;
  close(): void;
}

export async function openPtyEnd(path: string): Promise<PtyEnd> {
  const fd = await new Promise<number>((resolve, reject) => {
    open(path, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK, (err, got) => (err ? reject(err) : resolve(got)));
  });
  const stream = new ReadStream(fd);
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  // The pair going away ends this stream too; the test looks at what arrived before.
  stream.on('error', () => undefined);
  return {
    bytes: () => Buffer.concat(chunks),
    write: (text) =>
      new Promise<void>((resolve, reject) => {
        stream.write(Buffer.from(text, 'latin1'), (err) => (err ? reject(err) : resolve()));
      }),
    close: () => stream.destroy(),
  };
}

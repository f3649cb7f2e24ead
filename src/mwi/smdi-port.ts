/**
 * The serial device of an SMDI link: opened once and kept open (the switch's answers arrive on
 * it), line settings applied with `stty -F` (coreutils), and reopened with backoff when it goes
 * away (a USB adapter unplugged, the far end of a pseudo-terminal closed). A write while the
 * device is down fails at once with SmdiDeviceError naming the device; the MWI queue retries it.
 *
 * Why stty and not an npm serial package: the one well-kept package carries a native addon (with
 * prebuilt binaries per platform) for what is, here, four termios flags set once per open; stty is
 * in every Debian system already, and its settings can be checked by an administrator with the
 * same command. Bytes are read and written through node's own tty stream, which never blocks the
 * event loop or the thread pool.
 */
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { close as closeFd, constants, open as openFd } from 'node:fs';
import { isatty, ReadStream } from 'node:tty';
import { VmbridgeError } from '../errors.js';
import type { Logger } from '../log.js';
import { missingLineSettings, SmdiReplyReader, sttyArgs, type SmdiLineSettings, type SmdiReply } from './smdi.js';

/** The device could not be opened, set up or written. Names the device; the job is retried. */
export class SmdiDeviceError extends VmbridgeError {
  readonly device: string;
  constructor(device: string, message: string, options?: { cause?: unknown }) {
    super('SMDI_DEVICE', `SMDI device ${device}: ${message}`, options);
    this.device = device;
  }
}

export interface SmdiPortOptions {
  readonly device: string;
  readonly line: SmdiLineSettings;
  readonly msdstrip: number;
  readonly log: Logger;
  /** First wait before reopening a lost device; doubles per failed attempt... */
  readonly reopenInitialMs: number;
  /** ...up to this. */
  readonly reopenMaxMs: number;
  /** A write not taken by the device in this time counts as a lost device. */
  readonly writeTimeoutMs: number;
  /** The stty program; default `stty` from PATH. */
  readonly stty?: string;
}

type State = 'idle' | 'opening' | 'open' | 'down' | 'closed';

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ? `${e.code}: ${e.message}` : String(e?.message ?? err);
}

function run(file: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 5_000, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = (err as { code?: unknown } | null)?.code;
      if (err && typeof code !== 'number') reject(err);
      else resolve({ code: typeof code === 'number' ? code : 0, stdout, stderr });
    });
  });
}

/**
 * Events: `open` (every successful open, the first included: what the switch was told before is
 * unknown from here on), `reply` (SmdiReply from the switch).
 */
export class SmdiPort extends EventEmitter {
  private state: State = 'idle';
  private stream: ReadStream | undefined;
  private opening: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private lastError = '';
  private readonly log: Logger;

  constructor(private readonly opts: SmdiPortOptions) {
    super();
    this.log = opts.log.child({ smdiDevice: opts.device });
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Writes `bytes`; resolves once the device took them. Opens the device on first use. */
  async write(bytes: Buffer): Promise<void> {
    if (this.state === 'idle') await this.openNow();
    else if (this.state === 'opening') await this.opening;
    const stream = this.stream;
    if (this.state !== 'open' || !stream) {
      if (this.state === 'closed') throw new SmdiDeviceError(this.opts.device, 'the target is closed');
      throw new SmdiDeviceError(this.opts.device, `not open (${this.lastError}); reopening with backoff`);
    }
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new SmdiDeviceError(this.opts.device, `write not taken within ${this.opts.writeTimeoutMs} ms`);
        this.lost(stream, err);
        reject(err);
      }, this.opts.writeTimeoutMs);
      stream.write(bytes, (err) => {
        clearTimeout(timer);
        if (!err) return resolve();
        const e = new SmdiDeviceError(this.opts.device, `write failed (${errText(err)})`, { cause: err });
        this.lost(stream, e);
        reject(e);
      });
    });
  }

  private openNow(): Promise<void> {
    this.state = 'opening';
    this.opening = this.open().then(
      (stream) => {
        this.opening = undefined;
        if (this.state === 'closed') {
          stream.destroy();
          return;
        }
        const wasLost = this.attempt > 0 || this.lastError !== '';
        this.stream = stream;
        this.state = 'open';
        this.attempt = 0;
        this.lastError = '';
        this.log.info({ device: this.opts.device }, wasLost ? 'SMDI device reopened' : 'SMDI device open');
        this.emit('open');
      },
      (err: unknown) => {
        this.opening = undefined;
        if (this.state === 'closed') return;
        this.lastError = errText(err);
        this.goDown(`cannot open SMDI device ${this.opts.device}`);
      },
    );
    return this.opening;
  }

  private async open(): Promise<ReadStream> {
    const { device } = this.opts;
    // O_NONBLOCK: a serial port waiting for carrier (no clocal) must not hang the open.
    const fd = await new Promise<number>((resolve, reject) => {
      openFd(device, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK, (err, fd) => (err ? reject(err) : resolve(fd)));
    });
    try {
      if (!isatty(fd)) throw new SmdiDeviceError(device, 'is not a serial (terminal) device');
      await this.applyLine();
      const stream = new ReadStream(fd);
      const reader = new SmdiReplyReader(this.opts.msdstrip);
      stream.on('data', (chunk: Buffer) => {
        for (const reply of reader.push(chunk)) this.emit('reply', reply satisfies SmdiReply);
      });
      stream.on('error', (err) => this.lost(stream, err));
      stream.on('end', () => this.lost(stream, new Error('the device was closed (end of input)')));
      stream.on('close', () => this.lost(stream, new Error('the device was closed')));
      return stream;
    } catch (err) {
      closeFd(fd, () => undefined);
      throw err;
    }
  }

  /** stty, then a read-back: a setting the device did not take is an error (speed) or a warning. */
  private async applyLine(): Promise<void> {
    const { device, line } = this.opts;
    const stty = this.opts.stty ?? 'stty';
    let set;
    try {
      set = await run(stty, sttyArgs(device, line));
    } catch (err) {
      throw new SmdiDeviceError(device, `cannot run ${stty} (${errText(err)})`, { cause: err });
    }
    // Exit status 1 with "unable to perform all requested operations" is the read-back below's job.
    if (set.code !== 0 && !/unable to perform all requested operations/.test(set.stderr)) {
      throw new SmdiDeviceError(device, `${stty} failed: ${set.stderr.trim().slice(0, 200)}`);
    }
    const shown = await run(stty, ['-F', device, '-a']).catch((err: unknown) => {
      throw new SmdiDeviceError(device, `cannot run ${stty} (${errText(err)})`, { cause: err });
    });
    if (shown.code !== 0) throw new SmdiDeviceError(device, `${stty} -a failed: ${shown.stderr.trim().slice(0, 200)}`);
    const missing = missingLineSettings(line, shown.stdout);
    if (missing.includes('speed')) throw new SmdiDeviceError(device, `does not take ${line.baudrate} baud`);
    if (missing.length > 0) {
      // A pseudo-terminal has no parity or character size; a real serial port that refuses them
      // will garble the link, so say which.
      this.log.warn({ device, missing }, 'SMDI device did not take every line setting (normal for a pseudo-terminal)');
    }
  }

  private lost(stream: ReadStream, err: unknown): void {
    if (this.stream !== stream || this.state !== 'open') return;
    this.stream = undefined;
    stream.destroy();
    this.lastError = errText(err);
    this.goDown(`SMDI device ${this.opts.device} lost`);
  }

  private goDown(what: string): void {
    this.state = 'down';
    const delay = Math.min(this.opts.reopenInitialMs * 2 ** Math.min(this.attempt, 20), this.opts.reopenMaxMs);
    this.attempt++;
    this.log.warn({ device: this.opts.device, err: this.lastError, retryInMs: delay }, `${what}; trying again`);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.state === 'down') void this.openNow();
    }, delay);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.state = 'closed';
    clearTimeout(this.timer);
    const stream = this.stream;
    this.stream = undefined;
    if (stream && !stream.destroyed) {
      await new Promise<void>((resolve) => {
        stream.once('close', () => resolve());
        stream.destroy();
      });
    }
  }
}

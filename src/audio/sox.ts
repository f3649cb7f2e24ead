/**
 * Converting a recording with SoX (Debian: sox, and libsox-fmt-mp3 for MP3 through LAME). The
 * recording goes in on standard input, read by vmbridge itself (so a symbolic link in the spool is
 * never followed by the tool), and the result is written to a private temporary folder: SoX's MP3
 * writer seeks back to finish the file, which a pipe cannot do. The spool is never written.
 *
 * The options make the output depend on the input alone: -R (repeatable dither), --comment ''
 * (no "Processed by SoX" tag), so the same voicemail always gives the same email bytes.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AudioToolError } from '../errors.js';
import { readableAs } from './formats.js';

/** What Debian calls the packages, for the error that says what to install. */
export const SOX_PACKAGES = 'sox libsox-fmt-mp3';

/** MP3 at 16 kHz mono, 24 kbit/s (MPEG-2 layer III): speech stays clear, and 8 kHz MPEG-2.5 is skipped by some players. */
const MP3_OUT = ['-t', 'mp3', '-r', '16000', '-c', '1', '-C', '24'] as const;
/** PCM WAV as Asterisk's own `wav`: 8 kHz mono 16-bit. */
const WAV_OUT = ['-t', 'wav', '-e', 'signed-integer', '-b', '16', '-r', '8000', '-c', '1'] as const;

export interface SoxOptions {
  /** The program; default `sox` from the PATH. */
  readonly command?: string;
  /** One conversion at most this long; then the process is killed. */
  readonly timeoutMs: number;
}

export class SoxTranscoder {
  private readonly command: string;
  private scratch: Promise<string> | undefined;
  private counter = 0;

  constructor(private readonly opts: SoxOptions) {
    this.command = opts.command ?? 'sox';
  }

  /**
   * Whether the tool is there and writes what `targets` need. Throws AudioToolError naming the
   * packages to install: a missing tool is found at start, not at every voicemail.
   */
  async check(targets: ReadonlySet<'mp3' | 'wav'>): Promise<string> {
    let help: string;
    try {
      help = await run(this.command, ['-h'], undefined, this.opts.timeoutMs);
    } catch (cause) {
      throw new AudioToolError(`the audio tool ${JSON.stringify(this.command)} cannot be run (${describe(cause)}); install it (Debian: apt-get install ${SOX_PACKAGES}), or set email.audio to original`, { cause });
    }
    const formats = /AUDIO FILE FORMATS:([^\n]*)/.exec(help)?.[1]?.trim().split(/\s+/) ?? [];
    for (const t of targets) {
      if (!formats.includes(t)) {
        throw new AudioToolError(`${this.command} cannot write ${t.toUpperCase()} here; install ${t === 'mp3' ? 'libsox-fmt-mp3' : 'sox'} (Debian: apt-get install ${SOX_PACKAGES}), or set email.audio to original`);
      }
    }
    return /SoX v?(\S+)/.exec(help)?.[1] ?? 'unknown';
  }

  /** The recording (bytes of a file with extension `ext`) as MP3 or PCM WAV. */
  /** `gain`: voicemail.conf volgain=, SoX's -v (a linear factor, as Asterisk passes it); undefined or ~0: none. */
  async convert(input: Buffer, ext: string, to: 'mp3' | 'wav', gain?: number): Promise<Buffer> {
    const inputArgs = readableAs(ext);
    if (!inputArgs) throw new AudioToolError(`${this.command} cannot read .${ext} recordings`);
    const dir = await this.scratchDir();
    const out = join(dir, `${process.pid}-${++this.counter}.${to}`);
    try {
      const volume = gain !== undefined && Math.abs(gain) > 0.001 ? ['-v', gain.toFixed(4)] : [];
      await run(this.command, ['-R', '-D', '-V1', ...volume, ...inputArgs, '-', '--comment', '', ...(to === 'mp3' ? MP3_OUT : WAV_OUT), out], input, this.opts.timeoutMs);
      return await readFile(out);
    } finally {
      await rm(out, { force: true });
    }
  }

  async close(): Promise<void> {
    const dir = this.scratch;
    this.scratch = undefined;
    if (dir) await rm(await dir, { recursive: true, force: true }).catch(() => undefined);
  }

  private scratchDir(): Promise<string> {
    this.scratch ??= mkdtemp(join(tmpdir(), 'vmbridge-audio-'));
    return this.scratch;
  }
}

function run(command: string, args: readonly string[], input: Buffer | undefined, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const killed = (err as { killed?: boolean }).killed === true;
        reject(new AudioToolError(killed ? `${command} took longer than ${timeoutMs} ms and was stopped` : `${command} failed: ${(stderr || err.message).trim().split('\n').slice(-2).join(' ')}`, { cause: err }));
        return;
      }
      resolve(`${stdout}${stderr}`);
    });
    // A tool that stops reading early (bad input) closes the pipe; its exit status tells why.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

function describe(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'cause' in err) {
    const code = (err as { cause?: { code?: unknown } }).cause?.code;
    if (typeof code === 'string') return code;
  }
  return err instanceof Error ? err.message : String(err);
}

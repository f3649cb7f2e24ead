/**
 * An engine the administrator brings: any program, run without a shell, with {wav} and
 * {language} in its arguments replaced. It writes JSON ({"text": ..., "language"?: ...,
 * "confidence"?: 0..1}) or plain text on stdout; a non-zero exit is a failure. The audio goes
 * wherever that program sends it: vmbridge itself never sends it off the host.
 */
import { TranscriptionError } from '../errors.js';
import type { EngineInput, EngineOutput, TranscriptionEngine } from './engine.js';
import { assertReadable, findProgram, runProgram } from './run.js';

export interface CommandOptions {
  readonly command: readonly string[];
  readonly model: string;
  readonly files: readonly string[];
  /** Settings key of this model, for the errors (transcription.models.de). */
  readonly setting: string;
  readonly nice: number;
}

export class CommandEngine implements TranscriptionEngine {
  readonly engine = 'command';
  readonly model: string;

  constructor(private readonly opts: CommandOptions) {
    this.model = opts.model;
  }

  async check(): Promise<void> {
    const { setting } = this.opts;
    const program = this.opts.command[0] ?? '';
    if (!(await findProgram(program))) {
      throw new TranscriptionError(`${setting}.command: ${program} is not found or not executable; install it or name it with its path`, { setting: `${setting}.command` });
    }
    if (!this.opts.command.some((a) => a.includes('{wav}'))) {
      throw new TranscriptionError(`${setting}.command: no argument holds {wav}, so the program would not get the recording`, { setting: `${setting}.command` });
    }
    for (const f of this.opts.files) await assertReadable(f, `${setting}.files`, 'model file');
  }

  async transcribe(input: EngineInput): Promise<EngineOutput> {
    const [program = '', ...template] = this.opts.command;
    const args = template.map((a) => a.replaceAll('{wav}', input.wavPath).replaceAll('{language}', input.language));
    const { stdout } = await runProgram(program, args, { signal: input.signal, nice: this.opts.nice });
    return parseEngineOutput(stdout, program);
  }
}

/** JSON when the output starts with `{`, else the whole output as plain text. */
export function parseEngineOutput(stdout: string, program: string): EngineOutput {
  const trimmed = stdout.trim();
  if (!trimmed.startsWith('{')) return { text: trimmed };
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (cause) {
    throw new TranscriptionError(`${program} wrote output that starts like JSON but is not JSON`, {}, { cause });
  }
  const o = value as { text?: unknown; language?: unknown; confidence?: unknown };
  if (typeof o.text !== 'string') throw new TranscriptionError(`${program} wrote JSON without a "text" string`);
  const confidence = typeof o.confidence === 'number' && Number.isFinite(o.confidence) && o.confidence >= 0 && o.confidence <= 1 ? o.confidence : undefined;
  return {
    text: o.text,
    ...(typeof o.language === 'string' && o.language.length <= 35 ? { language: o.language } : {}),
    ...(confidence !== undefined ? { confidence } : {}),
  };
}

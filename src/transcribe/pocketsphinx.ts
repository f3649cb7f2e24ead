/**
 * CMU PocketSphinx 5prealpha (Debian 12: pocketsphinx, models in pocketsphinx-en-us) through its
 * pocketsphinx_continuous program. Given `-infile x.wav` it decodes the file utterance by
 * utterance and prints one line of words per utterance on stdout; `-logfn /dev/null` keeps its
 * log off stderr, so stderr holds only what went wrong. It reads the WAV header only when the
 * name ends in .wav, and then insists on 16 kHz, which prepare.ts makes. It gives no confidence.
 */
import { basename } from 'node:path';
import { TranscriptionError } from '../errors.js';
import type { EngineInput, EngineOutput, TranscriptionEngine } from './engine.js';
import { assertReadable, findProgram, runProgram } from './run.js';

export interface PocketsphinxOptions {
  readonly program: string;
  readonly hmm: string;
  readonly lm: string;
  readonly dict: string;
  readonly model?: string;
  /** Settings key of this model, for the errors (transcription.models.en). */
  readonly setting: string;
  readonly nice: number;
}

export class PocketsphinxEngine implements TranscriptionEngine {
  readonly engine = 'pocketsphinx';
  readonly model: string;

  constructor(private readonly opts: PocketsphinxOptions) {
    this.model = opts.model ?? basename(opts.hmm.replace(/\/+$/, ''));
  }

  async check(): Promise<void> {
    const { setting } = this.opts;
    if (!(await findProgram(this.opts.program))) {
      throw new TranscriptionError(`${setting}.program: ${this.opts.program} is not found or not executable; install it (Debian: apt-get install pocketsphinx pocketsphinx-en-us) or name it with its path`, { setting: `${setting}.program` });
    }
    await assertReadable(this.opts.hmm, `${setting}.hmm`, 'acoustic model folder', true);
    await assertReadable(`${this.opts.hmm}/mdef`, `${setting}.hmm`, 'acoustic model file');
    await assertReadable(this.opts.lm, `${setting}.lm`, 'language model');
    await assertReadable(this.opts.dict, `${setting}.dict`, 'dictionary');
  }

  async transcribe(input: EngineInput): Promise<EngineOutput> {
    if (!input.wavPath.endsWith('.wav')) throw new TranscriptionError(`${this.opts.program} reads a WAV header only from a file named *.wav`);
    const { stdout } = await runProgram(this.opts.program, ['-infile', input.wavPath, '-hmm', this.opts.hmm, '-lm', this.opts.lm, '-dict', this.opts.dict, '-logfn', '/dev/null'], { signal: input.signal, nice: this.opts.nice });
    const text = stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '').join(' ');
    return { text, language: input.language };
  }
}

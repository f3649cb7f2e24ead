/**
 * sherpa-onnx (the sherpa-onnx-node package, an optional dependency: prebuilt onnxruntime inside,
 * nothing downloaded) with a model directory the administrator puts on disk. Each transcript runs
 * sherpa-child.ts in a child process under nice, like every engine, so a model that is slow or
 * crashes takes no CPU from the service's own process and can be killed.
 *
 * The directory holds the files of one model as its publishers name them; which ones are needed
 * depends on `kind`. Where an int8 file sits beside the full one, the int8 one is used (smaller,
 * faster on a CPU).
 */
import { readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TranscriptionError } from '../errors.js';
import { parseEngineOutput } from './command.js';
import type { EngineInput, EngineOutput, TranscriptionEngine } from './engine.js';
import { assertReadable, runProgram } from './run.js';

export const SHERPA_KINDS = ['whisper', 'transducer', 'paraformer', 'sense-voice', 'moonshine'] as const;
export type SherpaKind = (typeof SHERPA_KINDS)[number];

export interface SherpaOptions {
  readonly modelDir: string;
  readonly kind: SherpaKind;
  readonly model?: string;
  readonly threads: number;
  /** Settings key of this model, for the errors (transcription.models.en). */
  readonly setting: string;
  readonly nice: number;
}

/** Each file a kind needs: its part name, how its file is named, and the name as an error shows it. */
type Part = readonly [part: string, name: RegExp, shown: string];
const TOKENS: Part = ['tokens', /tokens\.txt$/, '*tokens.txt'];
const FILES: Record<SherpaKind, readonly Part[]> = {
  whisper: [['encoder', /encoder.*\.onnx$/, '*encoder*.onnx'], ['decoder', /decoder.*\.onnx$/, '*decoder*.onnx'], TOKENS],
  transducer: [['encoder', /encoder.*\.onnx$/, '*encoder*.onnx'], ['decoder', /decoder.*\.onnx$/, '*decoder*.onnx'], ['joiner', /joiner.*\.onnx$/, '*joiner*.onnx'], TOKENS],
  paraformer: [['model', /^model.*\.onnx$/, 'model*.onnx'], TOKENS],
  'sense-voice': [['model', /^model.*\.onnx$/, 'model*.onnx'], TOKENS],
  moonshine: [['preprocess', /^preprocess.*\.onnx$/, 'preprocess*.onnx'], ['encode', /^encode.*\.onnx$/, 'encode*.onnx'], ['uncached', /^uncached_decode.*\.onnx$/, 'uncached_decode*.onnx'], ['cached', /^cached_decode.*\.onnx$/, 'cached_decode*.onnx'], TOKENS],
};

/** The file for one part: int8 first (smaller, faster on a CPU), then the full one. */
export function pickFile(names: readonly string[], name: RegExp): string | undefined {
  const matches = names.filter((n) => name.test(n)).sort();
  return matches.find((n) => n.includes('int8')) ?? matches[0];
}

export class SherpaEngine implements TranscriptionEngine {
  readonly engine = 'sherpa-onnx';
  readonly model: string;
  private files: Map<string, string> | undefined;

  constructor(private readonly opts: SherpaOptions) {
    this.model = opts.model ?? basename(opts.modelDir.replace(/\/+$/, ''));
  }

  async check(): Promise<void> {
    const { setting, modelDir, kind } = this.opts;
    try {
      createRequire(import.meta.url).resolve('sherpa-onnx-node');
    } catch (cause) {
      throw new TranscriptionError(`${setting}.engine: sherpa-onnx needs the npm package sherpa-onnx-node, which is not installed (npm install sherpa-onnx-node); it ships for Linux x64 and arm64`, { setting: `${setting}.engine` }, { cause });
    }
    await assertReadable(modelDir, `${setting}.modelDir`, 'model folder', true);
    const names = await readdir(modelDir);
    const files = new Map<string, string>();
    for (const [part, pattern, shown] of FILES[kind]) {
      const name = pickFile(names, pattern);
      if (!name) throw new TranscriptionError(`${setting}.modelDir: the model folder ${modelDir} has no ${shown}, which a ${kind} model needs; put the model's files there (vmbridge never downloads a model)`, { setting: `${setting}.modelDir` });
      const path = join(modelDir, name);
      await assertReadable(path, `${setting}.modelDir`, 'model file');
      files.set(part, path);
    }
    this.files = files;
  }

  async transcribe(input: EngineInput): Promise<EngineOutput> {
    if (!this.files) await this.check();
    const config = recognizerConfig(this.opts.kind, this.files!, input.language, this.opts.threads);
    const [program, args] = childCommand();
    // 16 MB of output at most: a model that loops prints far less than that before its time is up.
    const { stdout } = await runProgram(program, [...args, JSON.stringify(config), input.wavPath], { signal: input.signal, nice: this.opts.nice, maxBuffer: 16 * 1024 * 1024 });
    const out = parseEngineOutput(stdout, 'sherpa-onnx');
    return { ...out, language: out.language ?? input.language };
  }
}

/** sherpa-onnx's OfflineRecognizer config for a kind and its files. */
export function recognizerConfig(kind: SherpaKind, files: ReadonlyMap<string, string>, language: string, threads: number): unknown {
  const f = (part: string): string => files.get(part) ?? '';
  const lang = language.split(/[_-]/)[0]!.toLowerCase();
  const model = ((): Record<string, unknown> => {
    switch (kind) {
      case 'whisper':
        // Whisper invents text for silence at the end; prepare.ts has trimmed it.
        return { whisper: { encoder: f('encoder'), decoder: f('decoder'), language: lang, task: 'transcribe' } };
      case 'transducer':
        return { transducer: { encoder: f('encoder'), decoder: f('decoder'), joiner: f('joiner') } };
      case 'paraformer':
        return { paraformer: { model: f('model') } };
      case 'sense-voice':
        return { senseVoice: { model: f('model'), language: lang, useInverseTextNormalization: 1 } };
      case 'moonshine':
        return { moonshine: { preprocessor: f('preprocess'), encoder: f('encode'), uncachedDecoder: f('uncached'), cachedDecoder: f('cached') } };
    }
  })();
  return { featConfig: { sampleRate: 16000, featureDim: 80 }, modelConfig: { ...model, tokens: f('tokens'), numThreads: threads, provider: 'cpu', debug: 0 } };
}

/** node and the child script; from the sources (tests, `npm run vmbridge`) through tsx, as this process runs. */
function childCommand(): [string, string[]] {
  const here = fileURLToPath(import.meta.url);
  const script = here.replace(/sherpa\.(ts|js)$/, 'sherpa-child.$1');
  if (!here.endsWith('.ts')) return [process.execPath, [script]];
  const loaders: string[] = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--import' || a === '--require' || a === '--loader') loaders.push(a, argv[++i] ?? '');
    else if (/^--(import|require|loader)=/.test(a)) loaders.push(a);
  }
  return [process.execPath, [...loaders, script]];
}

/**
 * The sherpa-onnx engine with the real sherpa-onnx-node package: a model folder that is missing,
 * not a folder, or lacks a file its kind needs is an error at start naming the setting and the
 * path; a folder of files that are not a model gets through the check and then fails as a
 * transcription (the child process loads the real addon, which refuses them). No real model can
 * be used here: vmbridge never downloads one and none ships in a package.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { settingsSchema } from '../../src/config/schema.js';
import { TranscriptionError } from '../../src/errors.js';
import { memoryLogger } from '../support/memory-log.js';
import { pickFile, recognizerConfig, SherpaEngine } from '../../src/transcribe/sherpa.js';
import { startTranscription } from '../../src/transcribe/start.js';
import { toneWav } from '../support/tone.js';

const engine = (modelDir: string, kind: 'whisper' | 'transducer' = 'whisper'): SherpaEngine => new SherpaEngine({ modelDir, kind, threads: 1, setting: 'transcription.models.en', nice: 0 });

describe('sherpa-onnx engine', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-sherpa-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a missing model folder is an error naming the setting and the path', async () => {
    const missing = join(dir, 'no-such-model');
    await assert.rejects(engine(missing).check(), (err: unknown) => {
      assert.ok(err instanceof TranscriptionError);
      assert.equal(err.setting, 'transcription.models.en.modelDir');
      assert.match(err.message, new RegExp(`model folder ${missing} does not exist.*never downloads a model`));
      return true;
    });
  });

  it('a file where the folder should be, and a folder without the files of its kind, are errors too', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    await assert.rejects(engine(file).check(), /modelDir: the model folder .*a-file (is not a folder|cannot be read)/);
    const partial = join(dir, 'partial');
    await mkdir(partial);
    await writeFile(join(partial, 'tiny.en-encoder.int8.onnx'), 'x');
    await writeFile(join(partial, 'tiny.en-tokens.txt'), 'x');
    await assert.rejects(engine(partial).check(), /modelDir: the model folder .*partial has no \*decoder\*\.onnx, which a whisper model needs/);
    await assert.rejects(engine(partial, 'transducer').check(), /has no \*decoder\*\.onnx, which a transducer model needs/);
  });

  it('at start, a bad model folder turns transcription off with one error line naming the setting', async () => {
    const { log, lines } = memoryLogger();
    const settings = settingsSchema.parse({ imap: { host: 'localhost' }, transcription: { enabled: true, models: { en: { engine: 'sherpa-onnx', modelDir: join(dir, 'no-such-model') } } } });
    assert.equal(await startTranscription(settings, log), undefined);
    const line = lines.map((l) => JSON.parse(l) as { msg?: string; setting?: string }).find((l) => l.msg?.includes('transcription is off for this run'));
    assert.ok(line, lines.join('\n'));
    assert.equal(line.setting, 'transcription.models.en.modelDir');
  });

  it('picks the int8 file where both are there, and builds the recognizer config of each kind', () => {
    assert.equal(pickFile(['base.en-encoder.onnx', 'base.en-encoder.int8.onnx'], /encoder.*\.onnx$/), 'base.en-encoder.int8.onnx');
    assert.equal(pickFile(['uncached_decode.int8.onnx', 'cached_decode.int8.onnx'], /^cached_decode.*\.onnx$/), 'cached_decode.int8.onnx');
    const files = new Map([['encoder', '/m/e.onnx'], ['decoder', '/m/d.onnx'], ['tokens', '/m/t.txt']]);
    assert.deepEqual(recognizerConfig('whisper', files, 'en_US', 2), {
      featConfig: { sampleRate: 16000, featureDim: 80 },
      modelConfig: { whisper: { encoder: '/m/e.onnx', decoder: '/m/d.onnx', language: 'en', task: 'transcribe' }, tokens: '/m/t.txt', numThreads: 2, provider: 'cpu', debug: 0 },
    });
  });

  it('files that are not a model pass the check, then the real addon refuses them: a transcription failure', { timeout: 120_000 }, async () => {
    const fake = join(dir, 'fake-whisper');
    await mkdir(fake);
    for (const f of ['tiny.en-encoder.int8.onnx', 'tiny.en-decoder.int8.onnx', 'tiny.en-tokens.txt']) await writeFile(join(fake, f), 'not a model');
    const e = engine(fake);
    await e.check();
    const wav = join(dir, 'tone.wav');
    await writeFile(wav, await toneWav(dir));
    await assert.rejects(e.transcribe({ wavPath: wav, language: 'en', signal: new AbortController().signal }), (err: unknown) => {
      assert.ok(err instanceof TranscriptionError, String(err));
      assert.match(err.message, /failed/);
      return true;
    });
  });
});

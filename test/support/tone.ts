/** Audio for tests whose engine does not listen: a tone the audio tool reads and its trimming keeps. */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Two seconds of 440 Hz, 8 kHz mono 16-bit WAV, as a phone records it; written in `dir`. */
export async function toneWav(dir: string): Promise<Buffer> {
  const path = join(dir, 'tone.wav');
  await run('sox', ['-R', '-n', '-r', '8000', '-c', '1', '-b', '16', path, 'synth', '2', 'sine', '440', 'vol', '0.5']);
  return readFile(path);
}

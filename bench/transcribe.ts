/**
 * Transcription speed on this machine, each figure beside a floor measured in the same run:
 *
 *   real-time factor  engine time / seconds of speech, for each engine that can run here
 *                     (PocketSphinx with Debian's en-us model; sherpa-onnx with the model folder
 *                     in BENCH_SHERPA_MODEL, kind BENCH_SHERPA_KIND, when one is on disk), beside
 *                     the time SoX takes to make the engine's WAV from the same recording
 *   end to end        a new voicemail until an IMAP session sees its email carrying the
 *                     transcript: waiting within the budget (the transcript goes in the first
 *                     email), and with a zero budget (the email goes at once and its transcribed
 *                     replacement follows), beside the delay with transcription off; the
 *                     inbox folder is looked at every 50 ms
 *
 * Speech is made by espeak-ng and brought down to 8 kHz mono as a phone records it. The service
 * runs in this process, on a private Dovecot and Redis (test/support/harness.ts).
 * `node --import tsx bench/transcribe.ts` writes bench/results/transcribe.json and transcribe.md.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { simpleParser } from 'mailparser';
import { identityMessageId } from '../src/imap/identity-header.js';
import type { MailboxRef } from '../src/spool/types.js';
import type { TranscriptionEngine } from '../src/transcribe/engine.js';
import { PocketsphinxEngine } from '../src/transcribe/pocketsphinx.js';
import { prepareWav } from '../src/transcribe/prepare.js';
import { SherpaEngine, SHERPA_KINDS, type SherpaKind } from '../src/transcribe/sherpa.js';
import { leaveVoicemail } from '../test/support/asterisk-spool.js';
import { startHarness } from '../test/support/harness.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const SAMPLES = Number(process.env.BENCH_TRANSCRIBE_SAMPLES ?? 5);
const MODEL = '/usr/share/pocketsphinx/model/en-us';
const DOMAIN = 'vmbridge.test';
const SHORT = 'can you call me back tomorrow morning';
const LONG = 'hello this is sam from the garage your car is ready you can pick it up any time after four today we close at six and we are open on saturday morning too the bill comes to two hundred and ten pounds please bring the key card with you thank you';

interface Stats { n: number; p50: number; max: number }
function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const round = (x: number): number => Math.round(x * 100) / 100;
  return { n: s.length, p50: round(s[Math.floor(s.length / 2)] ?? NaN), max: round(s[s.length - 1] ?? NaN) };
}

async function speech(dir: string, name: string, text: string): Promise<{ path: string; audio: Buffer; seconds: number }> {
  const wide = join(dir, `${name}-wide.wav`);
  const path = join(dir, `${name}.wav`);
  await run('espeak-ng', ['-v', 'en-us+klatt4', '-s', '140', '-w', wide, text]);
  await run('sox', ['-R', '-V1', wide, '-t', 'wav', '-e', 'signed-integer', '-b', '16', '-r', '8000', '-c', '1', path]);
  const { stdout } = await run('soxi', ['-D', path]);
  return { path, audio: await readFile(path), seconds: Number(stdout.trim()) };
}

interface RtfRow { engine: string; recording: string; audioSeconds: number; soxMs: Stats; engineMs: Stats; soxRtf: number; engineRtf: number }

async function measureRtf(dir: string, engines: Map<string, TranscriptionEngine>, recordings: { name: string; audio: Buffer; seconds: number }[]): Promise<RtfRow[]> {
  const rows: RtfRow[] = [];
  for (const [name, engine] of engines) {
    for (const rec of recordings) {
      const sox: number[] = [];
      const eng: number[] = [];
      for (let i = 0; i < SAMPLES; i++) {
        const signal = new AbortController().signal;
        const wav = join(dir, `rtf-${i}.wav`);
        let t = performance.now();
        const prepared = await prepareWav('sox', rec.audio, 'wav', wav, signal);
        sox.push(performance.now() - t);
        t = performance.now();
        await engine.transcribe({ wavPath: prepared.path, language: 'en', signal });
        eng.push(performance.now() - t);
        process.stderr.write(`rtf ${name} ${rec.name}: ${i + 1}/${SAMPLES}\n`);
      }
      const s = stats(sox);
      const e = stats(eng);
      rows.push({ engine: name, recording: rec.name, audioSeconds: Math.round(rec.seconds * 100) / 100, soxMs: s, engineMs: e, soxRtf: Math.round((s.p50 / 1000 / rec.seconds) * 1000) / 1000, engineRtf: Math.round((e.p50 / 1000 / rec.seconds) * 100) / 100 });
    }
  }
  return rows;
}

/** New voicemail until an IMAP session sees its email, with the transcript header when `transcribed`. */
async function endToEnd(budgetSeconds: number, audio: Buffer, seconds: number): Promise<{ off: Stats; on: Stats }> {
  const h = await startHarness({
    boxes: [{ mailbox: '500', options: 'vmbridge_transcribe=yes' }, { mailbox: '501' }],
    confExtra: '[general]\nformat=wav\nlanguage=en\n',
    logLevel: 'warn',
    settings: (base) => ({
      ...base,
      transcription: { budgetSeconds, budgetPerAudioSecond: 0, models: { en: { engine: 'pocketsphinx', hmm: `${MODEL}/en-us`, lm: `${MODEL}/en-us.lm.bin`, dict: `${MODEL}/cmudict-en-us.dict` } } },
    }),
  });
  const service = await h.startService();
  try {
    const one = async (ref: MailboxRef, transcribed: boolean, n: number): Promise<number> => {
      const mc = await h.mail(ref);
      const started = performance.now();
      const left = await leaveVoicemail(h.spoolDir, ref, { callerid: `"Bench" <55506${n}>`, duration: Math.round(seconds), formats: ['wav'], audio });
      const id = identityMessageId(ref, left.msgId, DOMAIN);
      for (;;) {
        // Only the inbox folder, every 50 ms: a tighter look keeps Dovecot busy enough to slow the
        // engine, which runs at a lower priority (the first run of this bench measured that).
        const email = (await mc.list(['INBOX'])).find((e) => e.messageId === id);
        if (email && (!transcribed || (await simpleParser(await mc.source(email.folder, email.uid))).headers.get('x-asterisk-vm-transcription') !== undefined)) return performance.now() - started;
        if (performance.now() - started > 180_000) throw new Error(`no email for ${left.msgId} after 180 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const off: number[] = [];
    const on: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      off.push(await one({ context: 'default', mailbox: '501' }, false, i));
      on.push(await one({ context: 'default', mailbox: '500' }, true, i + 50));
      process.stderr.write(`end to end, budget ${budgetSeconds} s: ${i + 1}/${SAMPLES}\n`);
    }
    return { off: stats(off), on: stats(on) };
  } finally {
    await service.close();
    await h.stop();
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'vmb-bench-tr-'));
  try {
    const short = await speech(dir, 'short', SHORT);
    const long = await speech(dir, 'long', LONG);
    const engines = new Map<string, TranscriptionEngine>();
    const sphinx = new PocketsphinxEngine({ program: 'pocketsphinx_continuous', hmm: `${MODEL}/en-us`, lm: `${MODEL}/en-us.lm.bin`, dict: `${MODEL}/cmudict-en-us.dict`, setting: 'bench', nice: 0 });
    const notMeasured: Record<string, string> = {};
    try {
      await sphinx.check();
      engines.set('pocketsphinx en-us', sphinx);
    } catch (err) {
      notMeasured['pocketsphinx'] = err instanceof Error ? err.message : String(err);
    }
    const sherpaDir = process.env.BENCH_SHERPA_MODEL;
    if (sherpaDir) {
      const kind = (process.env.BENCH_SHERPA_KIND ?? 'whisper') as SherpaKind;
      if (!SHERPA_KINDS.includes(kind)) throw new Error(`BENCH_SHERPA_KIND ${kind} is not one of ${SHERPA_KINDS.join(', ')}`);
      const sherpa = new SherpaEngine({ modelDir: sherpaDir, kind, threads: 1, setting: 'bench', nice: 0 });
      await sherpa.check();
      engines.set(`sherpa-onnx ${sherpa.model}`, sherpa);
    } else {
      notMeasured['sherpa-onnx'] = 'no model folder on this machine (BENCH_SHERPA_MODEL): none ships in a package, and vmbridge never downloads one';
    }
    const rtf = await measureRtf(dir, engines, [{ name: 'short', ...short }, { name: 'long', ...long }]);
    const waiting = await endToEnd(60, short.audio, short.seconds);
    const late = await endToEnd(0, short.audio, short.seconds);
    const results = { date: new Date().toISOString(), samples: SAMPLES, rtf, notMeasured, endToEnd: { recordingSeconds: Math.round(short.seconds * 100) / 100, withinBudget: waiting, lateReplacement: late } };
    await mkdir(join(ROOT, 'bench/results'), { recursive: true });
    await writeFile(join(ROOT, 'bench/results/transcribe.json'), `${JSON.stringify(results, null, 2)}\n`);
    const lines = [
      `Transcription, ${SAMPLES} samples each (p50, max), ${results.date}`,
      '',
      '| engine | recording | speech s | floor: SoX prepares the WAV, ms | engine, ms | floor RTF | engine RTF |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...rtf.map((r) => `| ${r.engine} | ${r.recording} | ${r.audioSeconds} | ${r.soxMs.p50} (${r.soxMs.max}) | ${r.engineMs.p50} (${r.engineMs.max}) | ${r.soxRtf} | ${r.engineRtf} |`),
      ...Object.entries(notMeasured).map(([e, why]) => `| ${e} | not measured: ${why} | | | | | |`),
      '',
      `End to end, new voicemail (${results.endToEnd.recordingSeconds} s of speech) until its email is seen carrying the transcript, ms:`,
      '',
      '| case | floor: transcription off | transcribed email |',
      '| --- | --- | --- |',
      `| within the budget (one email, 60 s budget) | ${waiting.off.p50} (${waiting.off.max}) | ${waiting.on.p50} (${waiting.on.max}) |`,
      `| zero budget (email at once, replaced later) | ${late.off.p50} (${late.off.max}) | ${late.on.p50} (${late.on.max}) |`,
    ];
    await writeFile(join(ROOT, 'bench/results/transcribe.md'), `${lines.join('\n')}\n`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
// A client library may still hold a handle (Redis reconnect timers); the figures are written.
process.exit(0);

/**
 * Attachments made by the real audio tool (SoX from Debian, installed by scripts/install-deps.sh)
 * from a message a real Asterisk 22 recorded in three formats: each kind decodes back to a
 * recording as long as the envelope says, and the same message always gives the same bytes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { simpleParser } from 'mailparser';
import { prepareAttachments } from '../../src/audio/attachments.js';
import type { AttachmentPolicy } from '../../src/audio/formats.js';
import { SoxTranscoder } from '../../src/audio/sox.js';
import { conversionsNeeded } from '../../src/audio/start.js';
import { AudioToolError } from '../../src/errors.js';
import { buildVoicemailEmail } from '../../src/imap/voicemail-email.js';
import { parseEnvelope } from '../../src/spool/envelope.js';
import type { AudioFile, SpoolMessage } from '../../src/spool/types.js';

const run = promisify(execFile);
const INBOX = fileURLToPath(new URL('../fixtures/asterisk/spool/voicemail/default/1000/INBOX/', import.meta.url));
const policy = (p: Partial<AttachmentPolicy>): AttachmentPolicy => ({ attach: true, mode: 'mp3', formats: ['wav49', 'gsm', 'wav'], ...p });

describe('attachments made with SoX', () => {
  let dir: string;
  let sox: SoxTranscoder;
  let message: SpoolMessage;

  const email = async (p: AttachmentPolicy, m: SpoolMessage = message): Promise<Buffer> => {
    const prepared = await prepareAttachments(p, m, (path) => readFile(path), sox);
    assert.deepEqual(prepared.warnings, []);
    return buildVoicemailEmail({
      ref: { context: 'default', mailbox: '1000' }, message: m, owner: { fullName: 'Alice', email: 'alice@example.invalid' }, timezone: 'UTC',
      from: '"Voicemail" <voicemail@example.org>', serverName: 'PBX', messageIdDomain: 'vmbridge.invalid', readAudio: (path) => readFile(path), attachments: prepared.attachments,
    });
  };
  /** Seconds of audio in an attachment, decoded by SoX itself. */
  const seconds = async (name: string, content: Buffer): Promise<number> => {
    const path = join(dir, name);
    await writeFile(path, content);
    return Number((await run('soxi', ['-D', path])).stdout.trim());
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vmb-audio-'));
    sox = new SoxTranscoder({ timeoutMs: 20_000 });
    await sox.check(new Set(['mp3', 'wav']));
    const audio: AudioFile[] = ['WAV', 'gsm', 'wav'].map((ext) => ({ ext, path: `${INBOX}msg0000.${ext}` }));
    const envelope = parseEnvelope(await readFile(`${INBOX}msg0000.txt`), `${INBOX}msg0000.txt`);
    message = { id: envelope.msgId!, derivedId: false, folder: 'INBOX', msgnum: 0, txtPath: `${INBOX}msg0000.txt`, audio, envelope };
  });
  after(async () => {
    await sox?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const [mode, expected] of [
    ['mp3', [['msg0000.mp3', 'audio/mpeg']]],
    ['wav', [['msg0000.wav', 'audio/wav']]],
    ['original', [['msg0000.WAV', 'audio/wav']]],
    ['original+mp3', [['msg0000.WAV', 'audio/wav'], ['msg0000.mp3', 'audio/mpeg']]],
  ] as const) {
    it(`${mode}: ${expected.map(([n]) => n).join(' + ')}, each as long as the envelope's duration`, async () => {
      const parsed = await simpleParser(await email(policy({ mode })));
      assert.deepEqual(parsed.attachments.map((a) => [a.filename, a.contentType]), expected.map(([n, t]) => [n, t]));
      for (const a of parsed.attachments) {
        const s = await seconds(`${mode}-${a.filename}`, a.content);
        // Asterisk's duration is whole seconds of what it recorded; MP3 adds at most a frame or two.
        assert.ok(Math.floor(s) >= message.envelope.duration! && s < message.envelope.duration! + 1.2, `${a.filename}: ${s} s for duration=${message.envelope.duration}`);
      }
    });
  }

  it('the MP3 is a tenth of the PCM WAV or less, and the body names it', async () => {
    const mp3 = (await simpleParser(await email(policy({ mode: 'mp3' })))).attachments[0]!;
    const wav = (await simpleParser(await email(policy({ mode: 'wav' })))).attachments[0]!;
    assert.ok(mp3.size * 4 < wav.size, `mp3 ${mp3.size} bytes, wav ${wav.size} bytes`);
    assert.match((await simpleParser(await email(policy({ mode: 'mp3' })))).text ?? '', /The recording is attached: msg0000\.mp3\./);
  });

  it('made from wav49 or raw GSM alone, the MP3 is as long too; a WAV is made when there is no PCM file', async () => {
    for (const only of ['WAV', 'gsm']) {
      const m = { ...message, audio: message.audio.filter((a) => a.ext === only) };
      for (const mode of ['mp3', 'wav'] as const) {
        const [a] = (await simpleParser(await email(policy({ mode }), m))).attachments;
        assert.equal(a?.filename, `msg0000.${mode}`);
        const s = await seconds(`${only}-from.${mode}`, a!.content);
        assert.ok(Math.floor(s) >= 6 && s < 7.2, `${only} -> ${mode}: ${s} s`);
      }
    }
  });

  it('volgain= makes the MP3 louder by that factor, as Asterisk does with sox -v', async () => {
    const rms = async (name: string, content: Buffer): Promise<number> => {
      const path = join(dir, name);
      await writeFile(path, content);
      const { stderr } = await run('sox', [path, '-n', 'stat']);
      return Number(/RMS\s+amplitude:\s+([\d.]+)/.exec(stderr)?.[1]);
    };
    const plain = (await simpleParser(await email(policy({ mode: 'mp3' })))).attachments[0]!;
    const louder = (await simpleParser(await email(policy({ mode: 'mp3', volgain: 2 })))).attachments[0]!;
    const ratio = (await rms('louder.mp3', louder.content)) / (await rms('plain.mp3', plain.content));
    assert.ok(ratio > 1.8 && ratio < 2.2, `RMS ratio ${ratio}`);
  });

  it('the same voicemail gives the same bytes every time', async () => {
    assert.deepEqual(await email(policy({ mode: 'original+mp3' })), await email(policy({ mode: 'original+mp3' })));
  });

  it('attach=no: an email without audio that says so', async () => {
    const parsed = await simpleParser(await email(policy({ attach: false })));
    assert.equal(parsed.attachments.length, 0);
    assert.match(parsed.text ?? '', /The recording is not attached/);
  });

  it('a recording the tool cannot read is attached as it is, with a warning naming it', async () => {
    const bad = join(dir, 'msg0001.wav');
    await writeFile(bad, Buffer.from('not a RIFF file at all'));
    const m = { ...message, audio: [{ ext: 'wav', path: bad }] };
    const prepared = await prepareAttachments(policy({}), m, (path) => readFile(path), sox);
    assert.deepEqual(prepared.attachments.map((a) => [a.filename, a.contentType, a.content.toString()]), [['msg0001.wav', 'audio/wav', 'not a RIFF file at all']]);
    assert.equal(prepared.warnings.length, 1);
    assert.equal(prepared.warnings[0]!.file, bad);
    assert.match(prepared.warnings[0]!.problem, /sox failed: .*; attached as it is/);
  });

  it('a missing tool is an error naming the Debian packages', async () => {
    await assert.rejects(new SoxTranscoder({ command: join(dir, 'no-such-sox'), timeoutMs: 2_000 }).check(new Set(['mp3'])), (err: unknown) => err instanceof AudioToolError && /apt-get install sox libsox-fmt-mp3/.test(err.message));
  });

  it('a tool without MP3 is an error naming libsox-fmt-mp3', async () => {
    const fake = join(dir, 'sox-without-mp3');
    await writeFile(fake, '#!/bin/sh\necho "SoX v14.4.2"\necho "AUDIO FILE FORMATS: 8svx aif wav gsm"\n');
    await chmod(fake, 0o755);
    await assert.rejects(new SoxTranscoder({ command: fake, timeoutMs: 2_000 }).check(new Set(['mp3'])), (err: unknown) => err instanceof AudioToolError && /cannot write MP3 here; install libsox-fmt-mp3/.test(err.message));
    assert.equal(await new SoxTranscoder({ command: fake, timeoutMs: 2_000 }).check(new Set(['wav'])), '14.4.2');
  });

  it('a conversion that hangs is stopped at the timeout', async () => {
    const slow = join(dir, 'sox-that-hangs');
    await writeFile(slow, '#!/bin/sh\nexec sleep 30\n');
    await chmod(slow, 0o755);
    await assert.rejects(new SoxTranscoder({ command: slow, timeoutMs: 300 }).convert(Buffer.alloc(10), 'wav', 'mp3'), (err: unknown) => err instanceof AudioToolError && /took longer than 300 ms and was stopped/.test(err.message));
  });

  it('the tool is needed only where a mailbox wants MP3 or a made WAV', () => {
    assert.deepEqual([...conversionsNeeded([policy({ mode: 'original' }), policy({ attach: false })])], []);
    assert.deepEqual([...conversionsNeeded([policy({ mode: 'original+mp3' }), policy({ mode: 'wav' }), undefined])].sort(), ['mp3', 'wav']);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { asteriskAttachment, bestSource, extensionOf, planAttachments, readableAs, type AttachmentPolicy, type AttachmentStep } from '../../src/audio/formats.js';
import { asteriskTrue, boxAttachmentPolicy, recordedFormats } from '../../src/config/mailbox-audio.js';
import type { VoicemailBox, VoicemailConf } from '../../src/config/voicemail-conf.js';
import type { AudioFile } from '../../src/spool/types.js';

const files = (...exts: string[]): AudioFile[] => exts.map((ext) => ({ ext, path: `/s/INBOX/msg0000.${ext}` }));
const policy = (p: Partial<AttachmentPolicy>): AttachmentPolicy => ({ attach: true, mode: 'mp3', formats: ['wav49', 'gsm', 'wav'], ...p });
const show = (steps: AttachmentStep[]): string[] => steps.map((s) => (s.kind === 'file' ? `file:${s.file.ext}` : `${s.to}<-${s.from.ext}`));

describe('which recording is the best source', () => {
  it('PCM before µ-law before wav49 before raw GSM; 16 kHz before 8 kHz', () => {
    assert.equal(bestSource(files('gsm', 'WAV', 'wav'))?.ext, 'wav');
    assert.equal(bestSource(files('gsm', 'WAV'))?.ext, 'WAV');
    assert.equal(bestSource(files('gsm', 'ulaw'))?.ext, 'ulaw');
    assert.equal(bestSource(files('wav', 'wav16'))?.ext, 'wav16');
    assert.equal(bestSource(files('gsm'))?.ext, 'gsm');
  });
  it('formats the tool cannot read are never a source', () => {
    assert.equal(bestSource(files('g729', 'g723')), undefined);
    assert.equal(readableAs('g729'), undefined);
  });
  it('WAV (wav49) and wav (PCM) are told apart by case', () => {
    assert.deepEqual(readableAs('WAV'), ['-t', 'wav']);
    assert.deepEqual(readableAs('gsm'), ['-t', 'gsm', '-r', '8000', '-c', '1']);
    assert.equal(extensionOf('wav49'), 'WAV');
    assert.equal(extensionOf('gsm'), 'gsm');
  });
});

describe('the recording Asterisk attaches', () => {
  it('attachfmt when the message has it, else the first of format=', () => {
    assert.equal(asteriskAttachment({ attachfmt: 'gsm', formats: ['wav49', 'gsm'] }, files('WAV', 'gsm'))?.ext, 'gsm');
    assert.equal(asteriskAttachment({ formats: ['wav49', 'gsm'] }, files('gsm', 'WAV'))?.ext, 'WAV');
    assert.equal(asteriskAttachment({ attachfmt: 'ogg', formats: ['gsm'] }, files('WAV', 'gsm'))?.ext, 'gsm', 'attachfmt not recorded: format= order');
    assert.equal(asteriskAttachment({ formats: ['ulaw'] }, files('gsm', 'WAV'))?.ext, 'WAV', 'nothing of format=: first by name');
  });
});

describe('planAttachments', () => {
  const audio = files('WAV', 'gsm', 'wav');
  it('mp3 (default): one MP3 from the best recording', () => assert.deepEqual(show(planAttachments(policy({}), audio)), ['mp3<-wav']));
  it('wav: the PCM file as it is; made from the best when there is none', () => {
    assert.deepEqual(show(planAttachments(policy({ mode: 'wav' }), audio)), ['file:wav']);
    assert.deepEqual(show(planAttachments(policy({ mode: 'wav' }), files('WAV', 'gsm'))), ['wav<-WAV']);
  });
  it('original: what Asterisk attaches', () => assert.deepEqual(show(planAttachments(policy({ mode: 'original', attachfmt: 'gsm' }), audio)), ['file:gsm']));
  it('original+mp3: both', () => assert.deepEqual(show(planAttachments(policy({ mode: 'original+mp3' }), audio)), ['file:WAV', 'mp3<-wav']));
  it('attach=no: nothing, whatever the mode', () => {
    for (const mode of ['mp3', 'wav', 'original', 'original+mp3'] as const) assert.deepEqual(planAttachments(policy({ attach: false, mode }), audio), []);
  });
  it('nothing the tool can read: the original, as it is', () => assert.deepEqual(show(planAttachments(policy({ formats: ['g729'] }), files('g729'))), ['file:g729']));
});

describe('voicemail.conf: attach=, attachfmt=, format=, vmbridge_audio=', () => {
  const conf = (general: Record<string, string>): VoicemailConf => ({ general, zonemessages: {}, boxes: [], problems: [] }) as unknown as VoicemailConf;
  const box = (options: Record<string, string>): VoicemailBox => ({ context: 'default', mailbox: '1000', password: '1', fullName: 'A', emails: [], pager: '', options, file: '/etc/asterisk/voicemail.conf', line: 7 }) as VoicemailBox;
  it('ast_true', () => {
    for (const v of ['yes', 'YES', 'true', 'y', 't', '1', 'on', ' on ']) assert.equal(asteriskTrue(v), true, v);
    for (const v of ['no', '0', 'off', '', 'maybe']) assert.equal(asteriskTrue(v), false, v);
  });
  it('format= is |-separated, default wav', () => {
    assert.deepEqual(recordedFormats(conf({ format: 'wav49|gsm|wav' })), ['wav49', 'gsm', 'wav']);
    assert.deepEqual(recordedFormats(conf({})), ['wav']);
  });
  it('attach defaults to yes; the mailbox overrides [general]', () => {
    assert.equal(boxAttachmentPolicy(conf({}), box({}), 'mp3').policy.attach, true);
    assert.equal(boxAttachmentPolicy(conf({ attach: 'no' }), box({}), 'mp3').policy.attach, false);
    assert.equal(boxAttachmentPolicy(conf({ attach: 'no' }), box({ attach: 'yes' }), 'mp3').policy.attach, true);
  });
  it('vmbridge_audio= per mailbox, else [general], else the setting; a bad value is named and the setting used', () => {
    assert.equal(boxAttachmentPolicy(conf({}), box({}), 'original').policy.mode, 'original');
    assert.equal(boxAttachmentPolicy(conf({ vmbridge_audio: 'wav' }), box({}), 'mp3').policy.mode, 'wav');
    assert.equal(boxAttachmentPolicy(conf({ vmbridge_audio: 'wav' }), box({ vmbridge_audio: 'original+mp3' }), 'mp3').policy.mode, 'original+mp3');
    const bad = boxAttachmentPolicy(conf({}), box({ vmbridge_audio: 'flac' }), 'mp3');
    assert.equal(bad.policy.mode, 'mp3');
    assert.match(bad.problem ?? '', /vmbridge_audio=flac is not one of mp3, wav, original, original\+mp3; mp3 is used/);
  });
  it('attachfmt is kept as written', () => assert.equal(boxAttachmentPolicy(conf({ attachfmt: 'wav49' }), box({}), 'mp3').policy.attachfmt, 'wav49'));
  it('volgain= is a gain factor, the mailbox over [general]; 0 is none; text that is no number is named', () => {
    assert.equal(boxAttachmentPolicy(conf({ volgain: '1.5' }), box({}), 'mp3').policy.volgain, 1.5);
    assert.equal(boxAttachmentPolicy(conf({ volgain: '1.5' }), box({ volgain: '3' }), 'mp3').policy.volgain, 3);
    assert.equal(boxAttachmentPolicy(conf({ volgain: '0.0' }), box({}), 'mp3').policy.volgain, undefined);
    const bad = boxAttachmentPolicy(conf({}), box({ volgain: 'loud' }), 'mp3');
    assert.equal(bad.policy.volgain, undefined);
    assert.match(bad.problem ?? '', /volgain=loud is not a gain factor; ignored/);
  });
});

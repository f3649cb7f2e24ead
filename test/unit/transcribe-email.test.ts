/**
 * The transcription stage's pure parts: which mailboxes and languages, the budget, the limiter,
 * the word error rate, and where the transcript goes in the email (first in the body, and one
 * bounded, clean header line that IMAP SEARCH finds).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { buildVoicemailEmail, transcriptHeaderLine, type EmailTranscript } from '../../src/imap/voicemail-email.js';
import { boxTranscription, modelKeyFor } from '../../src/transcribe/policy.js';
import { budgetMs, emailTranscript, TRANSCRIPT_HEADING, transcriptionConcurrency } from '../../src/transcribe/transcriber.js';
import { PENDING_NOTE } from '../../src/transcribe/queued.js';
import { pendingFromHeaders } from '../../src/imap/observe.js';
import { Limiter } from '../../src/transcribe/limiter.js';
import { cleanTranscript, wordErrorRate } from '../../src/transcribe/text.js';
import type { VoicemailBox, VoicemailConf } from '../../src/config/voicemail-conf.js';
import type { SpoolMessage } from '../../src/spool/types.js';

const box = (options: Record<string, string>): VoicemailBox => ({ context: 'default', mailbox: '100', password: '1', fullName: 'A', emails: [], pager: '', options, file: 'voicemail.conf', line: 3 });
const conf = (general: Record<string, string>): VoicemailConf => ({ general, zonemessages: {}, boxes: [], problems: [] });
const defaults = { enabled: false, defaultLanguage: 'en' };

describe('transcription policy', () => {
  it('vmbridge_transcribe= of the mailbox, else [general], else transcription.enabled', () => {
    assert.deepEqual(boxTranscription(conf({}), box({}), defaults), { on: false, language: 'en' });
    assert.deepEqual(boxTranscription(conf({}), box({}), { ...defaults, enabled: true }), { on: true, language: 'en' });
    assert.equal(boxTranscription(conf({ vmbridge_transcribe: 'yes' }), box({}), defaults).on, true);
    assert.equal(boxTranscription(conf({ vmbridge_transcribe: 'yes' }), box({ vmbridge_transcribe: 'no' }), defaults).on, false);
    assert.equal(boxTranscription(conf({}), box({ vmbridge_transcribe: 'On' }), defaults).on, true);
    const odd = boxTranscription(conf({}), box({ vmbridge_transcribe: 'maybe' }), defaults);
    assert.equal(odd.on, false);
    assert.match(odd.problem ?? '', /vmbridge_transcribe=maybe/);
  });

  it('language= of the mailbox, else [general], else transcription.defaultLanguage; the model by language, then without region', () => {
    assert.equal(boxTranscription(conf({ language: 'de' }), box({}), defaults).language, 'de');
    assert.equal(boxTranscription(conf({ language: 'de' }), box({ language: 'en_GB' }), defaults).language, 'en_GB');
    // No language=: the locale's language, the mailbox's before [general]'s.
    assert.equal(boxTranscription(conf({ locale: 'fr_FR.UTF-8' }), box({}), defaults).language, 'fr_FR');
    assert.equal(boxTranscription(conf({ locale: 'fr_FR.UTF-8' }), box({ locale: 'de_DE.UTF-8@euro' }), defaults).language, 'de_DE');
    assert.equal(boxTranscription(conf({ locale: 'de_DE.UTF-8', language: 'en' }), box({}), defaults).language, 'en', 'language= wins');
    assert.equal(boxTranscription(conf({ locale: 'C.UTF-8' }), box({}), defaults).language, 'en', 'C is no language');
    assert.equal(modelKeyFor('de_DE', ['de', 'en']), 'de');
    assert.equal(modelKeyFor('en_GB', ['de', 'en']), 'en');
    assert.equal(modelKeyFor('en_GB', ['en-gb', 'en']), 'en-gb');
    assert.equal(modelKeyFor('DE', ['de']), 'de');
    assert.equal(modelKeyFor('fr', ['de', 'en']), undefined);
  });

  it('the budget: a few seconds plus a share of the length, capped', () => {
    const s = { budgetSeconds: 3, budgetPerAudioSecond: 0.5, budgetMaxSeconds: 60 };
    assert.equal(budgetMs(s, 10), 8000);
    assert.equal(budgetMs(s, undefined), 3000);
    assert.equal(budgetMs(s, 1000), 60_000);
    assert.equal(transcriptionConcurrency({ concurrency: undefined }, 2), 1, 'one on a small host');
    assert.equal(transcriptionConcurrency({ concurrency: undefined }, 16), 4);
    assert.equal(transcriptionConcurrency({ concurrency: 3 }, 2), 3);
  });

  it('the limiter holds others back, and a waiter that gives up leaves the line', async () => {
    const limiter = new Limiter(1);
    const first = await limiter.acquire(new AbortController().signal);
    const gaveUp = new AbortController();
    const abandoned = limiter.acquire(gaveUp.signal);
    let secondGot = false;
    const second = limiter.acquire(new AbortController().signal).then((r) => { secondGot = true; return r; });
    gaveUp.abort(new Error('budget'));
    await assert.rejects(abandoned, /budget/);
    assert.equal(secondGot, false);
    first();
    (await second)();
    assert.equal(limiter.active, 0);
  });

  it('word error rate and cleaning', () => {
    assert.equal(wordErrorRate('call me back', 'call me back'), 0);
    assert.equal(wordErrorRate('call me back', 'call back'), 1 / 3);
    assert.equal(wordErrorRate('call me back', 'fall me back now'), 2 / 3);
    assert.equal(cleanTranscript('a\u0000b\r\nc\u202Ed  e', 100), 'ab cd e');
    assert.equal(cleanTranscript('x'.repeat(500), 100).length, 100);
  });
});

describe('the transcript in the email', () => {
  const message: SpoolMessage = {
    id: '1700000000-00000001', derivedId: false, folder: 'INBOX', msgnum: 0, txtPath: '/spool/msg0000.txt',
    audio: [{ ext: 'wav', path: '/spool/msg0000.wav' }],
    envelope: { callerid: '"Ann" <5550100>', origtime: 1_700_000_000, duration: 4, msgId: '1700000000-00000001', raw: {} },
  };
  const build = (transcript?: EmailTranscript) => buildVoicemailEmail({
    ref: { context: 'default', mailbox: '100' }, message, owner: { fullName: 'Bo', email: 'bo@example.invalid' }, timezone: 'UTC',
    from: '"Voicemail" <voicemail@example.org>', serverName: 'PBX', messageIdDomain: 'vmbridge.invalid', readAudio: async () => Buffer.from('RIFF'),
    ...(transcript ? { transcript } : {}),
  });

  it('goes first in the body under its heading, and into X-Asterisk-VM-Transcription', async () => {
    const raw = await build({ text: 'please call me back\r\nBcc: evil@example.com', heading: TRANSCRIPT_HEADING });
    const head = raw.subarray(0, raw.indexOf('\r\n\r\n')).toString();
    assert.match(head, /\r\nX-Asterisk-VM-Transcription: please call me back Bcc: evil@example.com\r\n/);
    const parsed = await simpleParser(raw);
    assert.ok(parsed.text?.startsWith(`${TRANSCRIPT_HEADING}\nplease call me back Bcc: evil@example.com\n\nCaller: Ann`), parsed.text);
    assert.equal(parsed.bcc, undefined);
  });

  it('a missing transcript is one line first in the body and no header', async () => {
    const raw = await build(emailTranscript({ status: 'late', budgetMs: 1000 }));
    assert.ok(!raw.toString().includes('X-Asterisk-VM-Transcription'));
    const parsed = await simpleParser(raw);
    assert.match(parsed.text ?? '', /^Transcript: not ready in time[^\n]*\n\nCaller: Ann/);
    const none = await simpleParser(await build());
    assert.match(none.text ?? '', /^Caller: Ann/);
  });

  it('a pending transcript marks the email X-VMBridge-Transcript: pending; observation reads the mark from the header only', async () => {
    const raw = await build({ note: PENDING_NOTE, pending: true });
    assert.ok(pendingFromHeaders(raw));
    assert.match((await simpleParser(raw)).text ?? '', /^Transcript: still being made/);
    const done = await build({ text: 'X-VMBridge-Transcript: pending', heading: TRANSCRIPT_HEADING });
    assert.equal(pendingFromHeaders(done), false, 'the words in the body and in the transcript header are not the mark');
    assert.equal(pendingFromHeaders(await build(emailTranscript({ status: 'late', budgetMs: 1000 }))), false);
  });

  it('the header stays one line within 998 characters, whatever the text', () => {
    for (const text of ['word '.repeat(1000), '\u{1F600}'.repeat(2000), 'é'.repeat(3000), 'a\u0000\u0007b'.repeat(300)]) {
      const line = transcriptHeaderLine(text);
      assert.ok(line.length <= 998, `${line.length}`);
      assert.ok(!/[\r\n\u0000-\u001f]/.test(line));
      assert.ok(line.length > 100, 'still holds a good part of the text');
    }
  });
});

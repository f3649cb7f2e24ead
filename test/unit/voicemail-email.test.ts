import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import type { StructuredHeader } from 'mailparser';
import { SpoolError } from '../../src/errors.js';
import { parseIdentityMessageId } from '../../src/imap/identity-header.js';
import {
  asteriskDate,
  audioContentType,
  buildVoicemailEmail,
  humanDate,
  orderAudio,
  originMailbox,
  rfc5322Date,
} from '../../src/imap/voicemail-email.js';
import type { VoicemailEmailInput } from '../../src/imap/voicemail-email.js';
import type { AudioFile, Envelope, SpoolMessage } from '../../src/spool/types.js';

// A message Asterisk 22 left in mailbox 1000@default (see msg0000.txt beside the audio).
const INBOX = fileURLToPath(new URL('../fixtures/asterisk/spool/voicemail/default/1000/INBOX/', import.meta.url));
const ORIGTIME = 1795347150;
const MSG_ID = '1795347150-00000001';
const DOMAIN = 'vmbridge.invalid';

const fixtureEnvelope: Envelope = {
  origmailbox: '1000',
  context: 'vm-leave',
  exten: '1000',
  rdnis: 'unknown',
  priority: '2',
  callerchan: 'Local/1000@vm-leave-00000001;2',
  callerid: '"Test Caller" <5551234>',
  origdate: 'Sun Nov 22 11:32:30 AM UTC 2026',
  origtime: ORIGTIME,
  category: '',
  msgId: MSG_ID,
  flag: '',
  duration: 6,
  raw: {},
};

function audioFile(ext: string): AudioFile {
  return { ext, path: `${INBOX}msg0000.${ext}` };
}

function fixtureMessage(overrides: Partial<SpoolMessage> = {}, envelope: Partial<Envelope> = {}): SpoolMessage {
  return {
    id: MSG_ID,
    derivedId: false,
    folder: 'INBOX',
    msgnum: 0,
    txtPath: `${INBOX}msg0000.txt`,
    // Deliberately not in attachment order: the builder orders them.
    audio: [audioFile('gsm'), audioFile('WAV'), audioFile('wav')],
    envelope: { ...fixtureEnvelope, ...envelope },
    ...overrides,
  };
}

function input(message: SpoolMessage = fixtureMessage(), extra: Partial<VoicemailEmailInput> = {}): VoicemailEmailInput {
  return {
    ref: { context: 'default', mailbox: '1000' },
    message,
    owner: { fullName: 'Alice Example', email: 'alice@example.invalid' },
    timezone: 'UTC',
    from: '"Voicemail" <voicemail@example.org>',
    serverName: 'Example PBX',
    messageIdDomain: DOMAIN,
    readAudio: (path) => readFile(path),
    ...extra,
  };
}

/** The top-level header block as [name, value] in order, folded lines joined. */
function topHeaders(raw: Buffer): Array<[string, string]> {
  const text = raw.toString('latin1');
  const block = text.slice(0, text.indexOf('\r\n\r\n'));
  const out: Array<[string, string]> = [];
  for (const line of block.split('\r\n')) {
    if (/^[ \t]/.test(line)) {
      const last = out[out.length - 1];
      assert.ok(last, 'continuation line without a header');
      last[1] += line;
      continue;
    }
    const colon = line.indexOf(':');
    assert.ok(colon > 0, `not a header line: ${JSON.stringify(line)}`);
    out.push([line.slice(0, colon), line.slice(colon + 1).replace(/^ /, '')]);
  }
  return out;
}

function header(raw: Buffer, name: string): string | undefined {
  return topHeaders(raw).find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];
}

/**
 * Decodes RFC 2047 encoded words (UTF-8, Q or B). mailparser decodes them only in the headers
 * it knows (Subject, addresses), not in X- headers, so readers of those must do this themselves.
 */
function decodeWords(value: string): string {
  if (!value.startsWith('=?')) return value;
  const bytes = value.split(/\s+/).map((word) => {
    const m = /^=\?UTF-8\?([QB])\?(.*)\?=$/i.exec(word);
    assert.ok(m, `not an encoded word: ${word}`);
    const [, enc = '', data = ''] = m;
    if (enc.toUpperCase() === 'B') return Buffer.from(data, 'base64');
    return Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (_s, h: string) => String.fromCharCode(Number.parseInt(h, 16))), 'latin1');
  });
  return Buffer.concat(bytes).toString('utf8');
}

const STANDARD_ORDER = ['Date', 'From', 'To', 'Subject', 'Message-ID'];
const VM_ORDER = [
  'X-Asterisk-VM-Message-Num',
  'X-Asterisk-VM-Server-Name',
  'X-Asterisk-VM-Context',
  'X-Asterisk-VM-Extension',
  'X-Asterisk-VM-Flag',
  'X-Asterisk-VM-Priority',
  'X-Asterisk-VM-Caller-ID-Num',
  'X-Asterisk-VM-Caller-ID-Name',
  'X-Asterisk-VM-Duration',
  'X-Asterisk-VM-Category',
  'X-Asterisk-VM-Message-Type',
  'X-Asterisk-VM-Orig-date',
  'X-Asterisk-VM-Orig-time',
  'X-Asterisk-VM-Message-ID',
];
const FULL_ORDER = [...STANDARD_ORDER, ...VM_ORDER, 'X-Asterisk-CallerID', 'X-Asterisk-CallerIDName', 'MIME-Version', 'Content-Type'];

describe('buildVoicemailEmail with a real Asterisk message', async () => {
  const raw = await buildVoicemailEmail(input());
  const mail = await simpleParser(raw);

  it('has a subject a person reads at a glance', () => {
    assert.equal(mail.subject, 'Voicemail from Test Caller (5551234), 0:06');
  });

  it('says who, when, how long, where in the body', () => {
    assert.equal(
      mail.text,
      [
        'Caller: Test Caller',
        'Number: 5551234',
        'Received: Sunday, 22 November 2026, 11:32:30 (UTC)',
        'Duration: 0:06',
        'Mailbox: Alice Example 1000@default',
        'Folder: New',
        '',
        'The recording is attached: msg0000.wav (also msg0000.WAV, msg0000.gsm).',
        '',
      ].join('\n'),
    );
    const textPart = raw.toString('latin1').match(/Content-Type: text\/plain; charset=utf-8/);
    assert.ok(textPart, 'text/plain is declared UTF-8');
  });

  it('writes the headers in Asterisk IMAP storage order, nothing more', () => {
    assert.deepEqual(topHeaders(raw).map(([key]) => key), FULL_ORDER);
  });

  it('writes every X-Asterisk header value as Asterisk does', () => {
    const expected: Record<string, string> = {
      'X-Asterisk-VM-Message-Num': '1',
      'X-Asterisk-VM-Server-Name': 'Example PBX',
      'X-Asterisk-VM-Context': 'default', // the mailbox's context, not the envelope's vm-leave
      'X-Asterisk-VM-Extension': '1000',
      'X-Asterisk-VM-Flag': '',
      'X-Asterisk-VM-Priority': '2',
      'X-Asterisk-VM-Caller-ID-Num': '5551234',
      'X-Asterisk-VM-Caller-ID-Name': 'Test Caller',
      'X-Asterisk-VM-Duration': '6',
      'X-Asterisk-VM-Category': '',
      'X-Asterisk-VM-Message-Type': 'Message',
      'X-Asterisk-VM-Orig-date': 'Sunday, November 22, 2026 at 11:32:30 AM',
      'X-Asterisk-VM-Orig-time': String(ORIGTIME),
      'X-Asterisk-VM-Message-ID': MSG_ID,
      'X-Asterisk-CallerID': '5551234',
      'X-Asterisk-CallerIDName': 'Test Caller',
    };
    for (const [name, value] of Object.entries(expected)) assert.equal(header(raw, name), value, name);
    // mailparser agrees on the non-empty ones (it leaves empty headers out of its map).
    for (const [name, value] of Object.entries(expected)) {
      if (value !== '') assert.equal(mail.headers.get(name.toLowerCase()), value, name);
    }
  });

  it('keeps X-Asterisk headers on one line with one space after the colon, as Asterisk reads them', () => {
    const lines = raw.toString('latin1').slice(0, raw.indexOf('\r\n\r\n')).split('\r\n');
    for (const name of VM_ORDER) {
      const i = lines.findIndex((l) => l.startsWith(`${name}:`));
      assert.ok(i >= 0, name);
      assert.ok(lines[i]?.startsWith(`${name}: `), name);
      assert.ok(!/^[ \t]/.test(lines[i + 1] ?? ''), `${name} is folded`);
    }
  });

  it('dates the email when the message was left, not when it was built', () => {
    assert.equal(header(raw, 'Date'), 'Sun, 22 Nov 2026 11:32:30 +0000');
    assert.equal(mail.date?.getTime(), ORIGTIME * 1000);
  });

  it('uses the identity Message-ID, which parses back to the message', () => {
    assert.equal(mail.messageId, `<vm.${MSG_ID}.1000.default@${DOMAIN}>`);
    assert.deepEqual(parseIdentityMessageId(mail.messageId ?? '', DOMAIN), { ref: { context: 'default', mailbox: '1000' }, id: MSG_ID });
  });

  it('addresses the owner', () => {
    assert.deepEqual(mail.to && !Array.isArray(mail.to) ? mail.to.value : undefined, [{ address: 'alice@example.invalid', name: 'Alice Example' }]);
    assert.deepEqual(mail.from?.value, [{ address: 'voicemail@example.org', name: 'Voicemail' }]);
  });

  it('attaches every recording, PCM wav first, byte for byte, with playable types', async () => {
    assert.deepEqual(
      mail.attachments.map((a) => [a.filename, (a.headers.get('content-type') as StructuredHeader).value]),
      [
        ['msg0000.wav', 'audio/wav'],
        ['msg0000.WAV', 'audio/wav'],
        ['msg0000.gsm', 'audio/x-gsm'],
      ],
    );
    for (const a of mail.attachments) {
      assert.ok(a.content.equals(await readFile(`${INBOX}${a.filename ?? ''}`)), `${a.filename} differs`);
      assert.equal(a.contentDisposition, 'attachment');
      assert.equal(a.headers.get('content-description'), 'Voicemail sound attachment.');
    }
  });

  it('is CRLF throughout with no over-long lines', () => {
    const text = raw.toString('latin1');
    assert.ok(!/[^\r]\n/.test(text), 'bare LF');
    assert.ok(!/\r(?!\n)/.test(text), 'bare CR');
    for (const line of text.split('\r\n')) assert.ok(line.length <= 998);
  });

  it('is byte-identical when built again', async () => {
    const again = await buildVoicemailEmail(input());
    assert.ok(again.equals(raw));
  });
});

describe('buildVoicemailEmail variations', () => {
  const build = async (message: SpoolMessage, extra: Partial<VoicemailEmailInput> = {}) => {
    const raw = await buildVoicemailEmail(input(message, extra));
    return { raw, mail: await simpleParser(raw) };
  };

  it('cannot inject headers through the caller id', async () => {
    const evil = '"Evil\r\nBcc: victim@example.com\r\nX-Injected: 1\u0000\t\u0085\u009b" <555\r\n1234\r\n\r\nbody>';
    const { raw, mail } = await build(fixtureMessage({}, { callerid: evil }));
    assert.deepEqual(topHeaders(raw).map(([key]) => key), FULL_ORDER);
    assert.equal(mail.headers.get('bcc'), undefined);
    assert.equal(mail.headers.get('x-injected'), undefined);
    assert.equal(mail.subject, 'Voicemail from Evil Bcc: victim@example.com X-Injected: 1 (555 1234 body), 0:06');
    assert.equal(header(raw, 'X-Asterisk-VM-Caller-ID-Name'), 'Evil Bcc: victim@example.com X-Injected: 1');
    assert.equal(header(raw, 'X-Asterisk-VM-Caller-ID-Num'), '555 1234 body');
    assert.ok(!/[\p{Cc}]/u.test((mail.text ?? '').replace(/\n/g, '')));
    assert.ok((mail.text ?? '').startsWith('Caller: Evil Bcc: victim@example.com X-Injected: 1\nNumber: 555 1234 body\n'));
  });

  it('keeps non-ASCII names, RFC 2047 encoded in every header', async () => {
    // The envelope is Latin-1 on disk; decoded as such the name is "José Müller".
    const name = Buffer.from('Jos\xe9 M\xfcller', 'latin1').toString('latin1');
    const { raw, mail } = await build(fixtureMessage({}, { callerid: `"${name}" <5551234>` }));
    assert.equal(mail.subject, 'Voicemail from José Müller (5551234), 0:06');
    assert.match(mail.text ?? '', /^Caller: José Müller$/m);
    // No raw 8-bit bytes in the header block.
    const block = raw.subarray(0, raw.indexOf('\r\n\r\n'));
    assert.ok(block.every((b) => b < 0x80), '8-bit byte in headers');
    for (const h of ['Subject', 'X-Asterisk-VM-Caller-ID-Name', 'X-Asterisk-CallerIDName']) {
      assert.match(header(raw, h) ?? '', /^=\?UTF-8\?[QB]\?/, h);
    }
    assert.equal(decodeWords(header(raw, 'X-Asterisk-VM-Caller-ID-Name') ?? ''), 'José Müller');
    assert.equal(decodeWords(header(raw, 'X-Asterisk-CallerIDName') ?? ''), 'José Müller');
    // mailparser hands X- headers back still encoded.
    assert.equal(decodeWords(String(mail.headers.get('x-asterisk-vm-caller-id-name'))), 'José Müller');
  });

  it('handles names from other scripts and a long name', async () => {
    const { raw, mail } = await build(fixtureMessage({}, { callerid: `"${'Дмитрий 李小龍 😀 '.repeat(8)}" <12>` }));
    const decoded = decodeWords(header(raw, 'X-Asterisk-VM-Caller-ID-Name') ?? '');
    assert.equal([...decoded].length <= 80, true);
    assert.ok(decoded.startsWith('Дмитрий 李小龍 😀 Дмитрий'));
    assert.equal(mail.subject, `Voicemail from ${decoded} (12), 0:06`);
    assert.deepEqual(topHeaders(raw).map(([key]) => key), FULL_ORDER);
  });

  it('keeps unfolded header lines under 998 characters even for long non-ASCII values', async () => {
    const long = '😀'.repeat(500);
    const { raw, mail } = await build(fixtureMessage({}, { callerid: `"${long}" <${long}>`, category: long, priority: long, flag: long }), {
      serverName: long,
      owner: { fullName: long, email: 'a@example.invalid' },
    });
    for (const line of raw.toString('latin1').split('\r\n')) assert.ok(line.length <= 998, `${line.length}: ${line.slice(0, 40)}`);
    assert.equal([...decodeWords(header(raw, 'X-Asterisk-VM-Server-Name') ?? '')].length, 100);
    assert.deepEqual(topHeaders(raw).map(([key]) => key), FULL_ORDER);
    assert.match(mail.text ?? '', /^Category: (?:😀){100}$/mu);
  });

  it('marks urgent messages in the subject and the Flag header', async () => {
    const { raw, mail } = await build(fixtureMessage({ folder: 'Urgent' }, { flag: 'Urgent' }));
    assert.equal(mail.subject, 'Urgent: Voicemail from Test Caller (5551234), 0:06');
    assert.equal(header(raw, 'X-Asterisk-VM-Flag'), 'Urgent');
    assert.match(mail.text ?? '', /^Folder: Urgent$/m);
  });

  it('leaves the duration out when the envelope has none', async () => {
    const { raw, mail } = await build(fixtureMessage({}, { duration: undefined }));
    assert.equal(mail.subject, 'Voicemail from Test Caller (5551234)');
    assert.match(mail.text ?? '', /^Duration: unknown$/m);
    assert.equal(header(raw, 'X-Asterisk-VM-Duration'), '');
    assert.deepEqual(topHeaders(raw).map(([key]) => key), FULL_ORDER);
  });

  it('words other callers', async () => {
    const subject = async (callerid: string | undefined, duration = 75) =>
      (await build(fixtureMessage({}, { callerid, duration }))).mail.subject;
    assert.equal(await subject('5551234'), 'Voicemail from 5551234, 1:15');
    assert.equal(await subject('Test Caller'), 'Voicemail from Test Caller, 1:15');
    assert.equal(await subject('Unknown'), 'Voicemail from an unknown caller, 1:15');
    assert.equal(await subject(undefined, 600), 'Voicemail from an unknown caller, 10:00');
  });

  it('writes no CallerID headers for an unknown caller, and empty VM caller headers', async () => {
    const { raw, mail } = await build(fixtureMessage({}, { callerid: 'Unknown' }));
    assert.deepEqual(
      topHeaders(raw).map(([key]) => key),
      FULL_ORDER.filter((k) => k !== 'X-Asterisk-CallerID' && k !== 'X-Asterisk-CallerIDName'),
    );
    assert.equal(header(raw, 'X-Asterisk-VM-Caller-ID-Num'), '');
    assert.equal(header(raw, 'X-Asterisk-VM-Caller-ID-Name'), '');
    assert.match(mail.text ?? '', /^Caller: unknown\nNumber: unknown$/m);
  });

  it('uses the mailbox time zone for every date a person reads', async () => {
    const { raw, mail } = await build(fixtureMessage(), { timezone: 'America/New_York' });
    assert.equal(header(raw, 'Date'), 'Sun, 22 Nov 2026 06:32:30 -0500');
    assert.equal(mail.date?.getTime(), ORIGTIME * 1000);
    assert.equal(header(raw, 'X-Asterisk-VM-Orig-date'), 'Sunday, November 22, 2026 at 06:32:30 AM');
    assert.match(mail.text ?? '', /^Received: Sunday, 22 November 2026, 06:32:30 \(America\/New_York\)$/m);
  });

  it('puts a derived id in X-Asterisk-VM-Message-ID and the Message-ID', async () => {
    const derived = 'd-0123abcd';
    const { raw, mail } = await build(fixtureMessage({ id: derived, derivedId: true }, { msgId: undefined }));
    assert.equal(header(raw, 'X-Asterisk-VM-Message-ID'), derived);
    assert.deepEqual(parseIdentityMessageId(mail.messageId ?? '', DOMAIN)?.id, derived);
  });

  it('numbers the message and names the folder in words', async () => {
    const { raw, mail } = await build(fixtureMessage({ folder: 'Old', msgnum: 41 }));
    assert.equal(header(raw, 'X-Asterisk-VM-Message-Num'), '42');
    assert.match(mail.text ?? '', /^Folder: Old$/m);
  });

  it('falls back to the mailbox at the Message-ID domain when the owner has no email', async () => {
    const { mail } = await build(fixtureMessage(), { owner: { fullName: '', email: '' } });
    assert.deepEqual(mail.to && !Array.isArray(mail.to) ? mail.to.value : undefined, [{ address: `1000@${DOMAIN}`, name: '' }]);
    assert.match(mail.text ?? '', /^Mailbox: 1000@default$/m);
  });

  it('takes the first of several voicemail.conf addresses', async () => {
    const { mail } = await build(fixtureMessage(), { owner: { fullName: 'A', email: 'a@example.invalid|b@example.invalid' } });
    assert.deepEqual(mail.to && !Array.isArray(mail.to) ? mail.to.value : undefined, [{ address: 'a@example.invalid', name: 'A' }]);
  });

  it('takes the date from msg_id when origtime is missing, and refuses a message with neither', async () => {
    const { raw } = await build(fixtureMessage({}, { origtime: undefined }));
    assert.equal(header(raw, 'X-Asterisk-VM-Orig-time'), String(ORIGTIME));
    await assert.rejects(
      buildVoicemailEmail(input(fixtureMessage({}, { origtime: undefined, msgId: undefined }))),
      (err: unknown) => err instanceof SpoolError && err.path.endsWith('msg0000.txt'),
    );
  });

  it('refuses a message without audio, naming its .txt', async () => {
    await assert.rejects(
      buildVoicemailEmail(input(fixtureMessage({ audio: [] }))),
      (err: unknown) => err instanceof SpoolError && err.path === `${INBOX}msg0000.txt` && err.message.includes('msg0000.txt'),
    );
  });

  it('names the audio file it could not read', async () => {
    await assert.rejects(
      buildVoicemailEmail(input(fixtureMessage({ audio: [audioFile('wav')] }), { readAudio: () => Promise.reject(new Error('EACCES')) })),
      (err: unknown) => err instanceof SpoolError && err.path.endsWith('msg0000.wav'),
    );
  });

  it('attaches other formats with the types mail clients know', async () => {
    const exts = ['sln', 'mp3', 'ogg', 'g722', 'alaw', 'ulaw', 'gsm', 'WAV', 'wav'];
    const files = exts.map((ext) => ({ ext, path: `/spool/msg0003.${ext}`, size: 3 }));
    const { mail } = await build(fixtureMessage({ audio: files, msgnum: 3 }), { readAudio: (p) => Promise.resolve(Buffer.from(p)) });
    assert.deepEqual(
      mail.attachments.map((a) => [a.filename, (a.headers.get('content-type') as StructuredHeader).value]),
      [
        ['msg0003.wav', 'audio/wav'],
        ['msg0003.WAV', 'audio/wav'],
        ['msg0003.alaw', 'audio/x-alaw-basic'],
        ['msg0003.g722', 'audio/G722'], // spelled as in its IANA registration (RFC 4856)
        ['msg0003.gsm', 'audio/x-gsm'],
        ['msg0003.mp3', 'audio/mpeg'],
        ['msg0003.ogg', 'audio/ogg'],
        ['msg0003.sln', 'application/octet-stream'],
        ['msg0003.ulaw', 'audio/basic'],
      ],
    );
    for (const a of mail.attachments) assert.equal(a.content.toString(), `/spool/${a.filename ?? ''}`);
  });

  it('keeps the header set fixed for any caller id (property)', async () => {
    const audio = [{ ext: 'wav', path: '/spool/msg0000.wav', size: 4 }];
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary', maxLength: 120 }), fc.string({ maxLength: 120 })), async (callerid) => {
        const raw = await buildVoicemailEmail(
          input(fixtureMessage({ audio }, { callerid }), { readAudio: () => Promise.resolve(Buffer.from('RIFF')) }),
        );
        const keys = topHeaders(raw).map(([key]) => key);
        assert.deepEqual(keys.filter((k) => !k.startsWith('X-Asterisk-CallerID')), FULL_ORDER.filter((k) => !k.startsWith('X-Asterisk-CallerID')));
        const mail = await simpleParser(raw);
        assert.ok(!/\p{Cc}/u.test(mail.subject ?? ''), JSON.stringify(mail.subject));
        assert.ok((mail.subject ?? '').startsWith('Voicemail from '));
      }),
      { numRuns: 150 },
    );
  });
});

describe('helpers', () => {
  it('maps spool extensions to content types', () => {
    assert.equal(audioContentType('wav'), 'audio/wav');
    assert.equal(audioContentType('WAV'), 'audio/wav');
    assert.equal(audioContentType('gsm'), 'audio/x-gsm');
    for (const ext of ['ulaw', 'ul', 'mu']) assert.equal(audioContentType(ext), 'audio/basic');
    assert.equal(audioContentType('alaw'), 'audio/x-alaw-basic');
    assert.equal(audioContentType('g722'), 'audio/G722');
    assert.equal(audioContentType('ogg'), 'audio/ogg');
    assert.equal(audioContentType('mp3'), 'audio/mpeg');
    assert.equal(audioContentType('sln'), 'application/octet-stream');
    assert.equal(audioContentType('g729'), 'application/octet-stream');
  });

  it('orders PCM wav, then wav49, then the rest', () => {
    const order = orderAudio(['ulaw', 'WAV', 'gsm', 'wav'].map((ext) => ({ ext, path: ext, size: 0 }))).map((a) => a.ext);
    assert.deepEqual(order, ['wav', 'WAV', 'gsm', 'ulaw']);
  });

  it('formats dates in a zone', () => {
    // 2026-07-01 00:05:09 UTC: summer time in Berlin, midnight hour in UTC.
    const t = Date.UTC(2026, 6, 1, 0, 5, 9) / 1000;
    assert.equal(rfc5322Date(t, 'Europe/Berlin'), 'Wed, 01 Jul 2026 02:05:09 +0200');
    assert.equal(rfc5322Date(t, 'UTC'), 'Wed, 01 Jul 2026 00:05:09 +0000');
    assert.equal(rfc5322Date(t, 'Asia/Kolkata'), 'Wed, 01 Jul 2026 05:35:09 +0530');
    assert.equal(asteriskDate(t, 'UTC'), 'Wednesday, July 01, 2026 at 12:05:09 AM');
    assert.equal(asteriskDate(t, 'Europe/Berlin'), 'Wednesday, July 01, 2026 at 02:05:09 AM');
    assert.equal(asteriskDate(t + 13 * 3600, 'UTC'), 'Wednesday, July 01, 2026 at 01:05:09 PM');
    assert.equal(humanDate(t, 'America/Los_Angeles'), 'Tuesday, 30 June 2026, 17:05:09 (America/Los_Angeles)');
    assert.throws(() => humanDate(t, 'Mars/Olympus'), RangeError);
  });
});

describe('a message forwarded or copied from another mailbox', () => {
  // As Asterisk leaves it in 2000's INBOX after a forward from 1000 in VoiceMailMain (or after
  // VoiceMail(1000&2000)): the .txt is a copy, so origmailbox still names 1000.
  const copied = fixtureMessage({}, { origmailbox: '1000' });
  const at2000 = (extra: Partial<VoicemailEmailInput> = {}) => input(copied, { ref: { context: 'default', mailbox: '2000' }, owner: { fullName: 'Bob Example', email: 'bob@example.invalid' }, ...extra });

  it('says which mailbox it came from, with its owner from voicemail.conf', async () => {
    const names = new Map([['1000@default', 'Alice Example']]);
    const mail = await simpleParser(await buildVoicemailEmail(at2000({ ownerName: (r) => names.get(`${r.mailbox}@${r.context}`) })));
    assert.match(mail.text ?? '', /^Forwarded or copied from: mailbox 1000 \(Alice Example\)$/m);
    const unnamed = await simpleParser(await buildVoicemailEmail(at2000()));
    assert.match(unnamed.text ?? '', /^Forwarded or copied from: mailbox 1000$/m);
  });

  it('says nothing for a message left for the mailbox itself, or without origmailbox', async () => {
    assert.doesNotMatch((await simpleParser(await buildVoicemailEmail(input()))).text ?? '', /Forwarded/);
    assert.equal(originMailbox({ context: 'default', mailbox: '2000' }, fixtureMessage({}, { origmailbox: '' })), undefined);
    assert.equal(originMailbox({ context: 'default', mailbox: '1000' }, fixtureMessage({}, { origmailbox: '1000@default' })), undefined);
    assert.deepEqual(originMailbox({ context: 'sales', mailbox: '2000' }, fixtureMessage({}, { origmailbox: '1000@default' })), { context: 'sales', mailbox: '1000' });
  });

  it('a caller-controlled origmailbox cannot add a header or a line', async () => {
    const raw = await buildVoicemailEmail(input(fixtureMessage({}, { origmailbox: '1000\r\nBcc: x@evil.example' }), { ref: { context: 'default', mailbox: '2000' } }));
    assert.equal(header(raw, 'Bcc'), undefined);
    const text = (await simpleParser(raw)).text ?? '';
    assert.match(text, /^Forwarded or copied from: mailbox 1000 {1,2}Bcc: x$/m, "one line, the rest after @ taken for a context");
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type { MailComposerAttachment } from 'nodemailer/lib/mail-composer/index.js';
import { mimeBytes } from '../../src/imap/mime-bytes.js';

/** A text with the characters that change how nodemailer encodes it: non-ASCII, long lines, trailing blanks, bare LF/CR. */
const textArb = fc.array(
  fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 30 }),
    fc.constantFrom('\r\n', '\n', '\r', ' ', '\t', '=', 'ä', '€', '😀', '.', 'x'.repeat(75), 'y'.repeat(77)),
  ),
  { maxLength: 25 },
).map((parts) => parts.join(''));

const attachmentArb = fc.record({
  // Lengths around the 57-byte base64 line, and a few KiB.
  bytes: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 5 }).map((k) => new Uint8Array(57 * k)), fc.uint8Array({ minLength: 4000, maxLength: 9000 })),
  filename: fc.oneof(fc.constant('msg0000.wav'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 })),
  contentType: fc.constantFrom('audio/x-wav', 'audio/x-gsm', 'text/plain', 'application/octet-stream'),
  description: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
});

const mailArb = fc.record({
  text: textArb,
  subject: fc.string({ unit: 'grapheme', maxLength: 120 }),
  fromName: fc.string({ unit: 'grapheme', maxLength: 40 }),
  textEncoding: fc.constantFrom(undefined, 'quoted-printable', 'base64'),
  attachments: fc.array(attachmentArb, { maxLength: 3 }),
  boundarySeed: fc.stringMatching(/^[0-9a-f]{8,24}$/),
});

type Mail = typeof mailArb extends fc.Arbitrary<infer T> ? T : never;

function compose(mail: Mail): MailComposer {
  const attachments: MailComposerAttachment[] = mail.attachments.map((a) => ({
    filename: a.filename,
    content: Buffer.from(a.bytes),
    contentType: a.contentType,
    contentDisposition: 'attachment',
    ...(a.description === undefined ? {} : { headers: { 'Content-Description': a.description } }),
  }));
  return new MailComposer({
    date: 'Sun, 22 Nov 2026 11:32:30 +0000',
    from: { name: mail.fromName, address: 'voicemail@example.invalid' },
    to: 'owner@example.invalid',
    subject: mail.subject,
    messageId: '<vm.1-a.1000.default@example.invalid>',
    text: mail.text,
    ...(mail.textEncoding === undefined ? {} : { textEncoding: mail.textEncoding }),
    attachments,
    baseBoundary: mail.boundarySeed,
    boundaryPrefix: '--_test',
    disableFileAccess: true,
    disableUrlAccess: true,
  });
}

describe('mimeBytes', () => {
  it('gives the bytes nodemailer streams, for random messages', async () => {
    let written = 0;
    await fc.assert(
      fc.asyncProperty(mailArb, async (mail) => {
        const expected = await compose(mail).compile().build();
        const actual = mimeBytes(compose(mail).compile());
        if (actual === null) return; // left to nodemailer, which is what the caller then uses
        written++;
        assert.equal(actual.toString('latin1'), expected.toString('latin1'));
      }),
      { numRuns: 400 },
    );
    // Nearly every random message must take the fast path, or the test proves little.
    assert.ok(written > 300, `only ${written} of 400 messages were written without streams`);
  });

  it('writes a voicemail-shaped message (text and a 36 KiB recording) exactly as build() does', async () => {
    const mail: Mail = {
      text: 'Caller: Jürgen\r\nNumber: 5551234\r\n\r\nThe recording is attached: msg0000.wav.\r\n',
      subject: 'Voicemail from Jürgen (5551234), 0:06',
      fromName: 'Voicemail',
      textEncoding: undefined,
      attachments: [{ bytes: new Uint8Array(36 * 1024).map((_, i) => (i * 7) % 256), filename: 'msg0000.wav', contentType: 'audio/x-wav', description: 'Voicemail sound attachment.' }],
      boundarySeed: 'abcdef0123456789abcdef01',
    };
    const actual = mimeBytes(compose(mail).compile());
    assert.ok(actual !== null);
    assert.ok(actual.equals(await compose(mail).compile().build()));
  });

  it('leaves a tree with stream content, a raw node or newline conversion to nodemailer', () => {
    const withStream = new MailComposer({ text: 'x', attachments: [{ filename: 'a.wav', content: new PassThrough() }] }).compile();
    assert.equal(mimeBytes(withStream), null);
    const raw = new MailComposer({ raw: 'Subject: x\r\n\r\nbody\r\n' }).compile();
    assert.equal(mimeBytes(raw), null);
    const unixNewlines = new MailComposer({ text: 'x', newline: '\n' }).compile();
    assert.equal(mimeBytes(unixNewlines), null);
  });

  it('leaves quoted-printable text ending in a blank to nodemailer (its stream encodes that blank on its own)', () => {
    const node = new MailComposer({ text: 'Grüße \t', textEncoding: 'quoted-printable' }).compile();
    assert.equal(mimeBytes(node), null);
  });
});

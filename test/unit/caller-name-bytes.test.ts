/**
 * Caller names made of any bytes, written into msgNNNN.txt the ways Asterisk writes them, each give
 * exactly one message in the spool read and one well-formed email: no injected header, no bare CR
 * or LF, a one-line subject.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import { buildVoicemailEmail } from '../../src/imap/voicemail-email.js';
import { readMailbox } from '../../src/spool/read-mailbox.js';

const REF = { context: 'default', mailbox: '1000' };

/** A C string ends at its first NUL: that is all of a name Asterisk ever has. */
function cString(bytes: Uint8Array): Buffer {
  const nul = bytes.indexOf(0);
  return Buffer.from(nul < 0 ? bytes : bytes.subarray(0, nul));
}

/** Asterisk 22: each control character of the value behind a backslash. */
function escapedControls(name: Buffer): Buffer {
  const out: number[] = [];
  for (const b of name) {
    if (b < 0x20 || b === 0x7f) out.push(0x5c);
    out.push(b);
  }
  return Buffer.from(out);
}

/** Older app_voicemail: fprintf of the raw value. */
const raw = (name: Buffer): Buffer => name;

function envelope(nameBytes: Buffer, msgId: string): Buffer {
  return Buffer.concat([
    Buffer.from(';\n; Message Information file\n;\n[message]\norigmailbox=1000\ncontext=default\nexten=1000\nrdnis=unknown\npriority=2\ncallerchan=PJSIP/1000-00000001\ncallerid="'),
    nameBytes,
    Buffer.from(`" <5551234>\norigdate=Sun Nov 22 11:32:30 AM UTC 2026\norigtime=1795347150\ncategory=\nmsg_id=${msgId}\nflag=\nduration=6\n`),
  ]);
}

/** The names of the top-level header fields, in order. */
function headerNames(email: Buffer): string[] {
  const text = email.toString('latin1');
  const block = text.slice(0, text.indexOf('\r\n\r\n'));
  return block.split('\r\n').filter((l) => !/^[ \t]/.test(l)).map((l) => l.slice(0, l.indexOf(':')));
}

describe('caller names of any bytes (property)', () => {
  let spool: string;
  let folder: string;
  let cleanHeaders: string[];

  const emailFor = async (txt: Buffer): Promise<Buffer> => {
    await writeFile(join(folder, 'msg0000.txt'), txt);
    const snapshot = await readMailbox(spool, REF);
    assert.deepEqual(snapshot.problems, [], 'no file left out');
    assert.equal(snapshot.messages.length, 1, 'exactly one message');
    const message = snapshot.messages[0]!;
    return buildVoicemailEmail({
      ref: REF,
      message,
      owner: { fullName: 'Alice', email: 'alice@example.invalid' },
      timezone: 'UTC',
      from: '"Voicemail" <voicemail@example.org>',
      serverName: 'PBX',
      messageIdDomain: 'vmbridge.invalid',
      readAudio: (p) => readFile(p),
    });
  };

  before(async () => {
    spool = await mkdtemp(join(tmpdir(), 'vmbridge-names-'));
    folder = join(spool, 'voicemail', 'default', '1000', 'INBOX');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, 'msg0000.wav'), Buffer.from('RIFF....WAVEfmt '));
    cleanHeaders = headerNames(await emailFor(envelope(Buffer.from('Alice'), '1795347150-00000001')));
  });
  after(async () => {
    await rm(spool, { recursive: true, force: true });
  });

  it('the fixture bytes of the issue: Eve CR LF CR LF Action: UserEvent, escaped', async () => {
    const email = await emailFor(envelope(escapedControls(Buffer.from('Eve\r\n\r\nAction: UserEvent\r\nUserEvent: x')), '1795347150-00000002'));
    assert.deepEqual(headerNames(email), cleanHeaders);
    const parsed = await simpleParser(email);
    assert.equal(parsed.subject?.includes('Eve Action: UserEvent UserEvent: x'), true, parsed.subject);
    assert.equal(parsed.headers.has('action'), false);
  });

  for (const [style, write] of [['escaped (Asterisk 22)', escapedControls], ['raw (older Asterisk)', raw]] as const) {
    it(`${style}: one email, the same header fields, no bare CR or LF, a one-line subject`, async () => {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ maxLength: 60 }), async (bytes) => {
          const name = cString(bytes);
          const email = await emailFor(envelope(write(name), `1795347150-${(n++).toString(16).padStart(8, '0')}`));
          const text = email.toString('latin1');
          assert.equal(/\r(?!\n)|(?<!\r)\n/.test(text), false, 'no bare CR or LF');
          const names = headerNames(email);
          // An empty name, or one cut at a `;` (a comment to Asterisk too), leaves some caller fields out.
          assert.deepEqual(names.filter((h) => !cleanHeaders.includes(h)), [], 'no header added');
          assert.equal(new Set(names).size, names.length, 'no header twice');
          assert.ok(names.includes('Subject') && names.includes('Message-ID'));
          const parsed = await simpleParser(email);
          assert.equal(/[\r\n]/.test(parsed.subject ?? ''), false, 'one-line subject');
          assert.ok((parsed.subject ?? '').length > 0);
          assert.equal(parsed.attachments.length, 1);
        }),
        { numRuns: 150 },
      );
    });
  }
});

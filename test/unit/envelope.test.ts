import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { SpoolError } from '../../src/errors.js';
import { MAX_ENVELOPE_BYTES, parseEnvelope } from '../../src/spool/envelope.js';
import { messageIdentity } from '../../src/spool/identity.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/asterisk/', import.meta.url));
const fixture = (rel: string): Promise<Buffer> => readFile(`${FIXTURES}${rel}`);
const P = '/spool/voicemail/default/1000/INBOX/msg0000.txt';

/** Asserts that parseEnvelope throws a SpoolError naming the path and matching `problem`. */
function assertRejects(data: Buffer | string, problem: RegExp): void {
  assert.throws(
    () => parseEnvelope(typeof data === 'string' ? Buffer.from(data) : data, P),
    (err: unknown) => {
      assert.ok(err instanceof SpoolError, `expected SpoolError, got ${String(err)}`);
      assert.equal(err.path, P);
      assert.ok(err.message.startsWith(`${P}: `), err.message);
      assert.match(err.message, problem);
      return true;
    },
  );
}

/** What Asterisk 22 wrote (key=value, no spaces), as in the fixture. */
const PLAIN = `;
; Message Information file
;
[message]
origmailbox=1234
context=from-internal
exten=1234
rdnis=unknown
priority=2
callerchan=PJSIP/5678-00000012
callerid="Alice" <5678>
origdate=Tue Jun 20 03:59:44 PM UTC 2023
origtime=1687276784
category=
msg_id=1687276784-00000001
flag=
duration=12
`;

/**
 * The same message after ast_config_text_file_save rewrote it (add_message_id): a `;!` header,
 * `key = value` with spaces, comments dropped. An Asterisk 20 envelope, so it has macrocontext.
 */
const REWRITTEN = `;!
;! Automatically generated configuration file
;! Filename: msg0000.txt (/var/spool/asterisk/voicemail/default/1234/INBOX/msg0000.txt)
;! Generator: app_voicemail
;! Creation Date: Tue Jun 20 16:00:01 2023
;!

[message]
origmailbox = 1234
context = from-internal
macrocontext = 
exten = 1234
rdnis = unknown
priority = 2
callerchan = PJSIP/5678-00000012
callerid = "Alice" <5678>
origdate = Tue Jun 20 03:59:44 PM UTC 2023
origtime = 1687276784
category = 
msg_id = 1687276784-00000001
flag = 
duration = 12

`;

describe('parseEnvelope: real Asterisk 22 files', () => {
  it('reads the fixture 1000/INBOX/msg0000.txt', async () => {
    const env = parseEnvelope(await fixture('spool/voicemail/default/1000/INBOX/msg0000.txt'), P);
    assert.equal(env.origmailbox, '1000');
    assert.equal(env.context, 'vm-leave');
    assert.equal(env.macrocontext, undefined, 'Asterisk 21+ writes no macrocontext');
    assert.equal(env.exten, '1000');
    assert.equal(env.rdnis, 'unknown');
    assert.equal(env.priority, '2');
    // `;2` starts a comment for Asterisk's parser too: app_voicemail reads this value back truncated.
    assert.equal(env.callerchan, 'Local/1000@vm-leave-00000001');
    assert.equal(env.callerid, '"Test Caller" <5551234>');
    assert.equal(env.origdate, 'Sun Nov 22 11:32:30 AM UTC 2026');
    assert.equal(env.origtime, 1795347150);
    assert.equal(env.category, '');
    assert.equal(env.msgId, '1795347150-00000001');
    assert.equal(env.flag, '');
    assert.equal(env.duration, 6);
    assert.deepEqual(Object.keys(env.raw), [
      'origmailbox', 'context', 'exten', 'rdnis', 'priority', 'callerchan', 'callerid', 'origdate', 'origtime', 'category', 'msg_id', 'flag', 'duration',
    ]);
    assert.equal(env.raw['msg_id'], '1795347150-00000001');
  });

  it('reads the urgent fixture: flag=Urgent', async () => {
    const env = parseEnvelope(await fixture('spool-with-urgent/voicemail/default/1000/Urgent/msg0000.txt'), P);
    assert.equal(env.flag, 'Urgent');
    assert.equal(env.context, 'vm-leave-urgent');
    assert.equal(env.priority, '1');
    assert.equal(env.origtime, 1795347257);
    assert.equal(env.msgId, '1795347257-00000003');
    assert.equal(env.duration, 2);
  });

  it('a message moved to Old keeps its envelope byte for byte (same msg_id)', async () => {
    const inbox = parseEnvelope(await fixture('spool/voicemail/default/1000/INBOX/msg0000.txt'), P);
    const old = parseEnvelope(await fixture('spool-final/voicemail/default/1000/Old/msg0000.txt'), P);
    assert.deepEqual(old, inbox);
    const other = parseEnvelope(await fixture('spool-final/voicemail/default/1001/Old/msg0000.txt'), P);
    assert.equal(other.msgId, '1795347133-00000000');
    assert.equal(other.origmailbox, '1001');
  });
});

describe('parseEnvelope: syntax', () => {
  it('the rewritten `;!` / `key = value` style gives the same values as `key=value`', () => {
    const plain = parseEnvelope(Buffer.from(PLAIN), P);
    const rewritten = parseEnvelope(Buffer.from(REWRITTEN), P);
    assert.equal(rewritten.macrocontext, '', 'Asterisk 20 wrote macrocontext (empty here)');
    assert.equal(plain.macrocontext, undefined);
    const { macrocontext: _m, raw: rawRewritten, ...restRewritten } = rewritten;
    const { raw: rawPlain, ...restPlain } = plain;
    assert.deepEqual(restRewritten, restPlain);
    assert.equal(rawRewritten['macrocontext'], '');
    assert.equal(Object.keys(rawPlain).length + 1, Object.keys(rawRewritten).length);
    assert.equal(rewritten.callerid, '"Alice" <5678>');
    assert.equal(rewritten.duration, 12);
  });

  it('macrocontext with a value (Asterisk <= 20)', () => {
    const env = parseEnvelope(Buffer.from(PLAIN.replace('context=from-internal\n', 'context=from-internal\nmacrocontext=macro-dial\n')), P);
    assert.equal(env.macrocontext, 'macro-dial');
    assert.equal(env.context, 'from-internal');
  });

  it('accepts `=>`, \\; escapes, trailing comments and block comments', () => {
    const text = [
      ';-- a block comment',
      'spanning lines [not a category] --;',
      '[message] ; the only category',
      'origtime => 1687276784',
      'callerchan=PJSIP/5678-0000\\;0012 ; channel',
      'callerid = "A;--inline--;lice" <5678>',
      ';--',
      'duration=999',
      '--;duration=7',
      'exten=1234;---not a block comment',
      'category=a\\;b\\;c',
    ].join('\n');
    const env = parseEnvelope(Buffer.from(text), P);
    assert.equal(env.origtime, 1687276784);
    assert.equal(env.callerchan, 'PJSIP/5678-0000;0012');
    assert.equal(env.callerid, '"Alice" <5678>');
    assert.equal(env.duration, 7);
    assert.equal(env.exten, '1234');
    assert.equal(env.category, 'a;b;c');
  });

  it('keys are case-insensitive; the last of repeated keys wins (ast_variable_retrieve)', () => {
    const env = parseEnvelope(Buffer.from('[Message]\nORIGTIME=1\nDuration=3\nduration=4\n'), P);
    assert.equal(env.origtime, 1);
    assert.equal(env.duration, 4);
  });

  it('reads only [message]; keys in other categories are ignored', () => {
    const env = parseEnvelope(Buffer.from('[message]\norigtime=5\n[other]\norigtime=6\ncallerid=x\n'), P);
    assert.equal(env.origtime, 5);
    assert.equal(env.callerid, undefined);
  });

  it('unknown keys are kept in raw', () => {
    const env = parseEnvelope(Buffer.from(`${PLAIN}x_custom=hello world\n`), P);
    assert.equal(env.raw['x_custom'], 'hello world');
  });

  it('CRLF line endings are trimmed; a CR inside a value is kept for the email builder to clean', () => {
    const env = parseEnvelope(Buffer.from('[message]\r\norigtime=1687276784\r\ncallerid="Evil\rBcc: x@example.com" <5550000>\r\nduration=9\r\n'), P);
    assert.equal(env.origtime, 1687276784);
    assert.equal(env.callerid, '"Evil\rBcc: x@example.com" <5550000>');
    assert.equal(env.duration, 9);
  });

  it('a line break written inside a value (fprintf, unescaped) continues that value; the message is kept', () => {
    const env = parseEnvelope(Buffer.from('[message]\r\ncallerid="Evil\r\nBcc: victim@example.com\r\nX: y" <5550000>\r\norigtime=1687276784\r\nduration=9\r\n'), P);
    assert.equal(env.callerid, '"Evil\nBcc: victim@example.com\nX: y" <5550000>');
    assert.equal(env.origtime, 1687276784);
    assert.equal(env.duration, 9);
  });

  it('UTF-8 caller names are decoded as UTF-8', () => {
    const env = parseEnvelope(Buffer.from('[message]\norigtime=1\ncallerid="José Müller" <12>\n', 'utf8'), P);
    assert.equal(env.callerid, '"José Müller" <12>');
  });

  it('bytes that are not UTF-8 are read as ISO-8859-1 (Asterisk\'s default charset)', () => {
    const bytes = Buffer.concat([Buffer.from('[message]\norigtime=1687276784\ncallerid="Jos'), Buffer.from([0xe9]), Buffer.from('" <5550001>\nduration=9\n')]);
    const env = parseEnvelope(bytes, P);
    assert.equal(env.callerid, '"José" <5550001>');
    assert.equal(env.duration, 9);
  });

  it('duration missing or not a number: undefined', () => {
    assert.equal(parseEnvelope(Buffer.from('[message]\norigtime=1\n'), P).duration, undefined);
    assert.equal(parseEnvelope(Buffer.from('[message]\norigtime=1\nduration=\n'), P).duration, undefined);
    assert.equal(parseEnvelope(Buffer.from('[message]\norigtime=1\nduration=abc\n'), P).duration, undefined);
    assert.equal(parseEnvelope(Buffer.from('[message]\norigtime=1\nduration=0\n'), P).duration, 0);
  });

  for (const [why, value] of [
    ['a space', '1687276784 00000001'],
    ['a control character', '1687276784-\u000100000001'],
    ['non-ASCII', '1687276784-0000000é'],
    ['more than 64 characters', 'x'.repeat(65)],
    ['nothing', ''],
  ] as const) {
    it(`a msg_id with ${why} is treated as absent`, () => {
      const env = parseEnvelope(Buffer.from(`[message]\norigtime=1\nmsg_id=${value}\n`), P);
      assert.equal(env.msgId, undefined);
      assert.equal(env.raw['msg_id'], value);
    });
  }
});

describe('parseEnvelope: what is not an envelope', () => {
  it('binary content with NUL bytes', () => assertRejects(Buffer.from([0, 1, 2, 3, 255, 254, 0, 0, 10]), /binary/));
  it('binary content without NUL bytes', () => assertRejects(Buffer.from([0x5b, 1, 2, 3, 4, 5, 6, 7, 8, 0x1b, 0x7f, 0x0a, 0x41, 0x3d, 0x31]), /binary/));
  it('audio data in a .txt', async () => assertRejects(await fixture('spool/voicemail/default/1000/INBOX/msg0000.gsm'), /binary|too large/));
  it('no [message] category', () => assertRejects('[other]\norigtime=1\n', /no \[message\] category/));
  it('an empty file', () => assertRejects('', /no \[message\] category/));
  it('missing origtime', () => assertRejects(PLAIN.replace('origtime=1687276784\n', ''), /no origtime/));
  it('empty origtime', () => assertRejects(PLAIN.replace('origtime=1687276784\n', 'origtime=\n'), /no origtime/));
  it('non-numeric origtime', () => assertRejects(PLAIN.replace('origtime=1687276784', 'origtime=yesterday'), /origtime "yesterday" is not a number/));
  it('a line that is not key/value/comment/category, with its line number', () => {
    assertRejects('this is not an envelope\n', /line 1: .*"this is not an envelope"/);
    assertRejects('[message]\nthis is not an envelope\norigtime=1\n', /line 2: .*"this is not an envelope"/);
    assertRejects('[message]\norigtime=1\n[other]\nnot a setting\n', /line 4: .*"not a setting"/);
  });
  it('text without "=" after origtime makes origtime no number', () => assertRejects('[message]\norigtime=1\ngarbage\n', /origtime .* is not a number/));
  it('a key before any category', () => assertRejects('origtime=1\n[message]\n', /line 1: "origtime" comes before the \[message\] category/));
  it('an unclosed category', () => assertRejects('[message\norigtime=1\n', /line 1: no closing '\]'/));
  it('an #include directive', () => assertRejects('[message]\n#include "/etc/passwd"\norigtime=1\n', /line 2: #include is not allowed/));
  it('a file larger than any envelope', () => assertRejects(Buffer.alloc(MAX_ENVELOPE_BYTES + 1, 0x41), /too large/));

});

describe('messageIdentity', () => {
  it('uses msg_id when there is one', () => {
    assert.deepEqual(messageIdentity(parseEnvelope(Buffer.from(PLAIN), P)), { id: '1687276784-00000001', derived: false });
  });

  it('without msg_id: a stable derived id d-<24 hex>, the same for both file styles', () => {
    const noId = (s: string): string => s.replace(/^msg_id ?= ?.*\n/m, '');
    const a = messageIdentity(parseEnvelope(Buffer.from(noId(PLAIN)), P));
    const b = messageIdentity(parseEnvelope(Buffer.from(noId(REWRITTEN)), P));
    assert.equal(a.derived, true);
    assert.match(a.id, /^d-[0-9a-f]{24}$/);
    assert.deepEqual(b, a);
    assert.deepEqual(messageIdentity(parseEnvelope(Buffer.from(noId(PLAIN)), '/elsewhere/msg0007.txt')), a, 'the path plays no part');
    // Pinned: the id is stored in IMAP headers and sync state, so the recipe must never change.
    assert.equal(a.id, 'd-5f3f07e1b191085b5333af73');
  });

  it('an insane msg_id falls back to the derived id', () => {
    const env = parseEnvelope(Buffer.from(PLAIN.replace('msg_id=1687276784-00000001', 'msg_id=has space')), P);
    const id = messageIdentity(env);
    assert.equal(id.derived, true);
    assert.match(id.id, /^d-[0-9a-f]{24}$/);
  });

  it('each identifying field changes the derived id; others do not', () => {
    const base = PLAIN.replace(/^msg_id=.*\n/m, '');
    const idOf = (text: string): string => messageIdentity(parseEnvelope(Buffer.from(text), P)).id;
    const original = idOf(base);
    for (const [from, to] of [
      ['origtime=1687276784', 'origtime=1687276785'],
      ['callerid="Alice" <5678>', 'callerid="Alice" <5679>'],
      ['duration=12', 'duration=13'],
      ['callerchan=PJSIP/5678-00000012', 'callerchan=PJSIP/5678-00000013'],
      ['origmailbox=1234', 'origmailbox=1235'],
      ['exten=1234', 'exten=1235'],
      ['origdate=Tue Jun 20 03:59:44 PM UTC 2023', 'origdate=Tue Jun 20 03:59:45 PM UTC 2023'],
    ]) {
      assert.notEqual(idOf(base.replace(from!, to!)), original, `${from} -> ${to}`);
    }
    assert.equal(idOf(base.replace('flag=', 'flag=Urgent')), original, 'moving to Urgent keeps the id');
    assert.equal(idOf(base.replace('category=', 'category=x')), original);
    assert.notEqual(idOf(base.replace('duration=12\n', '')), original, 'absent is not the same as any value');
  });
});

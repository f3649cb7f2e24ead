import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { SpoolError } from '../../src/errors.js';
import { MAX_ENVELOPE_BYTES, parseEnvelope } from '../../src/spool/envelope.js';
import { messageIdentity } from '../../src/spool/identity.js';
import type { Envelope } from '../../src/spool/types.js';

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

describe('parseEnvelope: damaged envelopes still give a message (Asterisk counts every .txt)', () => {
  /** The .txt's modification time the reader passes in. */
  const FILE_TIME = 1_700_000_000;
  const lenient = (data: Buffer | string): Envelope => parseEnvelope(typeof data === 'string' ? Buffer.from(data) : data, P, { fileTime: FILE_TIME });
  const problemsOf = (env: Envelope): string => (env.problems ?? []).join('; ');

  it('a clean envelope has no problems', () => {
    assert.equal(lenient(PLAIN).problems, undefined);
    assert.equal(lenient(REWRITTEN).problems, undefined);
  });

  it('binary content with NUL bytes: read as far as it goes, the file time as origtime', () => {
    const env = lenient(Buffer.from([0, 1, 2, 3, 255, 254, 0, 0, 10]));
    assert.match(problemsOf(env), /binary content/);
    assert.equal(env.origtime, FILE_TIME);
    assert.equal(env.origtimeFromFile, true);
    assert.match(messageIdentity(env).id, /^d-[0-9a-f]{24}$/);
  });
  it('binary content without NUL bytes', () => assert.match(problemsOf(lenient(Buffer.from([0x5b, 1, 2, 3, 4, 5, 6, 7, 8, 0x1b, 0x7f, 0x0a, 0x41, 0x3d, 0x31]))), /binary content/));
  it('audio data in a .txt: a message with every field unknown, problems counted, not listed one by one', async () => {
    const env = lenient(await fixture('spool/voicemail/default/1000/INBOX/msg0000.gsm'));
    assert.match(problemsOf(env), /binary content/);
    assert.ok((env.problems ?? []).length <= 6, problemsOf(env));
    assert.equal(env.origtime, FILE_TIME);
  });
  it('binary bytes after a good envelope: what comes before them is used', () => {
    const env = lenient(Buffer.concat([Buffer.from(PLAIN), Buffer.from([0, 0, 0, 0xff, 0x01, 0x02, 0x0a])]));
    assert.equal(env.origtime, 1687276784);
    assert.equal(env.msgId, '1687276784-00000001');
    assert.equal(env.callerid, '"Alice" <5678>');
  });
  it('no [message] category but another one: nothing of it is used', () => {
    const env = lenient('[other]\norigtime=1\n');
    assert.match(problemsOf(env), /no \[message\] category/);
    assert.equal(env.origtime, FILE_TIME);
  });
  it('the [message] line missing: the keys are used', () => {
    const env = lenient(PLAIN.replace('[message]\n', ''));
    assert.match(problemsOf(env), /no \[message\] category; the keys before any category are used/);
    assert.equal(env.origtime, 1687276784);
    assert.equal(env.callerid, '"Alice" <5678>');
    assert.equal(env.msgId, '1687276784-00000001');
  });
  it('an empty file', () => {
    const env = lenient('');
    assert.match(problemsOf(env), /no \[message\] category/);
    assert.match(problemsOf(env), /no origtime; the file's time is used/);
    assert.equal(env.origtime, FILE_TIME);
  });
  it('missing, empty or non-numeric origtime: the file time, named', () => {
    for (const [text, problem] of [
      [PLAIN.replace('origtime=1687276784\n', ''), /no origtime; the file's time is used/],
      [PLAIN.replace('origtime=1687276784\n', 'origtime=\n'), /no origtime/],
      [PLAIN.replace('origtime=1687276784', 'origtime=yesterday'), /origtime "yesterday" is not a number/],
    ] as const) {
      const env = lenient(text);
      assert.match(problemsOf(env), problem);
      assert.equal(env.origtime, FILE_TIME);
      assert.equal(env.callerid, '"Alice" <5678>');
      assert.equal(env.msgId, '1687276784-00000001', 'the msg_id still identifies it');
    }
  });
  it('without a file time, a missing origtime stays absent (and is named)', () => {
    const env = parseEnvelope(Buffer.from('[message]\ncallerid=x\n'), P);
    assert.equal(env.origtime, undefined);
    assert.match(problemsOf(env), /no origtime/);
  });
  it('a line that is not key/value/comment/category is named with its line number; the rest is used', () => {
    assert.match(problemsOf(lenient('this is not an envelope\n')), /line 1: .*"this is not an envelope"/);
    const env = lenient('[message]\n[bad\norigtime=1\n');
    assert.match(problemsOf(env), /line 2: no closing '\]'/);
    assert.equal(env.origtime, 1);
  });
  it('a line in another category is not read at all', () => assert.equal(lenient('[message]\norigtime=1\n[other]\nnot a setting\n').problems, undefined));
  it('a key before the category is ignored, and said', () => {
    const env = lenient('origtime=1\n[message]\norigtime=2\n');
    assert.match(problemsOf(env), /a key comes before the \[message\] category; ignored/);
    assert.equal(env.origtime, 2);
  });
  it('an unclosed category: the keys after it are used', () => {
    const env = lenient('[message\norigtime=1\n');
    assert.match(problemsOf(env), /line 1: no closing '\]'/);
    assert.equal(env.origtime, 1);
  });
  it('an #include is never followed; named and ignored', () => {
    const env = lenient('[message]\n#include "/etc/passwd"\norigtime=1\n');
    assert.match(problemsOf(env), /line 2: #include does not belong in a message envelope; ignored/);
    assert.equal(env.origtime, 1);
  });
  it('duplicate keys: the last one wins, as ast_variable_retrieve', () => {
    const env = lenient(`${PLAIN}callerid="Mallory" <666>\nduration=3\n`);
    assert.equal(env.callerid, '"Mallory" <666>');
    assert.equal(env.duration, 3);
    assert.equal(env.problems, undefined);
  });
  it('a bad duration or msg_id is named', () => {
    assert.match(problemsOf(lenient(PLAIN.replace('duration=12', 'duration=twelve'))), /duration "twelve" is not a number; unknown/);
    assert.match(problemsOf(lenient(PLAIN.replace('msg_id=1687276784-00000001', 'msg_id=has space'))), /msg_id "has space" is not an id/);
  });
  it('truncated at every byte: never throws, and what was written whole is read', () => {
    for (let cut = 0; cut <= PLAIN.length; cut++) {
      const text = PLAIN.slice(0, cut);
      const env = lenient(text);
      if (text.includes('origtime=1687276784\n')) assert.equal(env.origtime, 1687276784, `cut at ${cut}`);
      else assert.ok(env.origtime === FILE_TIME || '1687276784'.startsWith(String(env.origtime)), `cut at ${cut}: ${env.origtime}`);
      if (text.includes('callerid="Alice" <5678>\n')) assert.equal(env.callerid, '"Alice" <5678>');
    }
  });
  it('a file larger than any envelope is refused (it is not one), naming the file', () => assertRejects(Buffer.alloc(MAX_ENVELOPE_BYTES + 1, 0x41), /too large/));

  it('identity of a damaged file: its bytes, not its time; copies share it, other damage does not', () => {
    const a = Buffer.from('[message]\ncallerid=x\n');
    const idA = messageIdentity(parseEnvelope(a, P, { fileTime: 1 })).id;
    assert.equal(messageIdentity(parseEnvelope(Buffer.from(a), '/other/msg0003.txt', { fileTime: 99 })).id, idA);
    assert.notEqual(messageIdentity(parseEnvelope(Buffer.from('[message]\ncallerid=y\n'), P, { fileTime: 1 })).id, idA);
    assert.match(idA, /^d-[0-9a-f]{24}$/);
  });
});

describe('parseEnvelope: control characters in a caller name, as Asterisk 22 writes them', () => {
  /** The bytes Asterisk 22.10.1 wrote for the caller name `Eve` CR LF CR LF `Action: UserEvent` CR LF `UserEvent: x`. */
  const EVE = Buffer.concat([
    Buffer.from('[message]\norigmailbox=1000\ncontext=default\nexten=1000\nrdnis=unknown\npriority=2\ncallerchan=PJSIP/1000-00000001\n'),
    Buffer.from('callerid="Eve\\\r\\\n\\\r\\\nAction: UserEvent\\\r\\\nUserEvent: x" <5551234>\n'),
    Buffer.from('origdate=Sun Nov 22 11:32:30 AM UTC 2026\norigtime=1795347150\ncategory=\nmsg_id=1795347150-00000007\nflag=\nduration=6\n'),
  ]);

  it('the fixture holds the bytes: one line of the file is backslash, CR, backslash', () => {
    assert.ok(EVE.toString('latin1').split('\n').includes('\\\r\\'));
  });

  it('reads the whole name, control characters kept for the email builder, and every other key', () => {
    const env = parseEnvelope(EVE, P);
    assert.equal(env.problems, undefined);
    assert.equal(env.callerid, '"Eve\r\n\r\nAction: UserEvent\r\nUserEvent: x" <5551234>');
    assert.equal(env.origtime, 1795347150);
    assert.equal(env.msgId, '1795347150-00000007');
    assert.equal(env.duration, 6);
    assert.equal(env.origdate, 'Sun Nov 22 11:32:30 AM UTC 2026');
  });

  it('a key=value line inside an escaped name stays part of the name', () => {
    const env = parseEnvelope(Buffer.from('[message]\ncallerid="Eve\\\nduration=999\\\norigmailbox=9" <1>\norigmailbox=1000\norigtime=5\nduration=6\n'), P);
    assert.equal(env.callerid, '"Eve\nduration=999\norigmailbox=9" <1>');
    assert.equal(env.origmailbox, '1000');
    assert.equal(env.duration, 6);
  });
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

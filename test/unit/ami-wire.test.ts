/**
 * The client's AMI framing against the captured bytes: what it encodes is what the capture sent,
 * and what the capture received parses into the messages a reader of the transcript sees, however
 * TCP cuts it.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AmiFrameReader, AmiProtocolError, AmiUnsafeValueError, encodeAction, type AmiMessage } from '../../src/mwi/ami-wire.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'asterisk', 'ami');
const fixture = (path: string): Promise<string> => readFile(join(FIXTURES, path), 'utf8');

function parse(chunks: readonly string[]): { version: string | undefined; messages: AmiMessage[] } {
  const messages: AmiMessage[] = [];
  let version: string | undefined;
  const reader = new AmiFrameReader((m) => messages.push(m), (v) => (version = v));
  for (const c of chunks) reader.push(c);
  return { version, messages };
}

describe('encodeAction', () => {
  it('produces the captured request bytes', async () => {
    const sent = await fixture('voicemail/50-voicemailmove-1000-INBOX-to-Old.sent.txt');
    const encoded = encodeAction('VoicemailMove', 'mv-1', [
      ['Context', 'default'],
      ['Mailbox', '1000'],
      ['Folder', 'INBOX'],
      ['ID', '1795347169-00000002'],
      ['ToFolder', 'Old'],
    ]);
    assert.equal(encoded, sent);
  });

  it('refuses CR, LF and NUL anywhere, and names that are not tokens', () => {
    for (const value of ['a\r\nAction: Logoff', 'a\nb', 'a\rb', 'a\0b']) {
      assert.throws(() => encodeAction('Ping', 'x-1', [['Mailbox', value]]), AmiUnsafeValueError);
      assert.throws(() => encodeAction('Ping', value, []), AmiUnsafeValueError);
      assert.throws(() => encodeAction(value, 'x-1', []), AmiUnsafeValueError);
    }
    for (const name of ['Mail box', 'Mailbox:', '', 'Mailbox\n', 'ActionID', 'action']) {
      assert.throws(() => encodeAction('Ping', 'x-1', [[name, 'v']]), AmiUnsafeValueError, name);
    }
  });

  it('refuses lines Asterisk would drop (over 1024 bytes with CRLF) and more than 128 headers', () => {
    assert.doesNotThrow(() => encodeAction('Ping', 'x-1', [['V', 'x'.repeat(1019)]]));
    assert.throws(() => encodeAction('Ping', 'x-1', [['V', 'x'.repeat(1020)]]), AmiUnsafeValueError);
    const many = Array.from({ length: 127 }, (_, i) => [`H${i}`, 'v'] as const);
    assert.throws(() => encodeAction('Ping', 'x-1', many), AmiUnsafeValueError);
  });
});

describe('AmiFrameReader', () => {
  it('keeps the stray LF of VoicemailMove inside the Message value, whatever the chunking', async () => {
    const recv = `Asterisk Call Manager/11.0.0\r\n${await fixture('voicemail/50-voicemailmove-1000-INBOX-to-Old.recv.txt')}`;
    for (const size of [1, 2, 3, 7, recv.length]) {
      const chunks = recv.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? [];
      const { version, messages } = parse(chunks);
      assert.equal(version, '11.0.0');
      assert.equal(messages.length, 1, `chunk size ${size}`);
      assert.deepEqual(messages[0]?.headers, [['Response', 'Success'], ['ActionID', 'mv-1'], ['Message', 'Message move successful\n']]);
    }
  });

  it('reads a whole captured listener session into its messages, headers in order', async () => {
    const { messages } = parse([await fixture('mwiext/99-listener-full-session.recv.txt')]);
    assert.equal(messages.length, 1 + 17); // the login reply and 17 events
    assert.equal(messages[0]?.response, 'Success');
    assert.deepEqual(messages.slice(1, 3).map((m) => m.event), ['FullyBooted', 'SuccessfulAuth']);
    const mwiGetItem = parse([`Asterisk Call Manager/11.0.0\r\n${await fixture('mwiext/30-mwiget-1000.recv.txt')}`]).messages[1];
    assert.equal(mwiGetItem?.headers.at(-1)?.[0], 'ActionID');
    assert.equal(mwiGetItem?.actionId, 'g-2');
    assert.equal(mwiGetItem?.get('oldmessages'), '3');
  });

  it('keeps empty values and repeated headers', () => {
    const { messages } = parse(['Asterisk Call Manager/11.0.0\r\nEvent: X\r\nPager: \r\nChanVariable: a=1\r\nChanVariable: b=2\r\n\r\n']);
    assert.equal(messages[0]?.get('Pager'), '');
    assert.deepEqual(messages[0]?.getAll('chanvariable'), ['a=1', 'b=2']);
  });

  it('refuses a stream that does not start with the AMI banner', () => {
    assert.throws(() => parse(['HTTP/1.1 400 Bad Request\r\n']), AmiProtocolError);
  });
});

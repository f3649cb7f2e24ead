/**
 * voicemail.conf charset=: the text part is written in the named charset and labelled so, as
 * Asterisk labels it, and reads back (mailparser) as the same text the UTF-8 email has; where the
 * charset cannot hold the text, or is unknown, the email is UTF-8 and the mailbox is warned about
 * once, naming the setting.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { simpleParser } from 'mailparser';
import { settingsSchema } from '../../src/config/schema.js';
import { readVoicemailConf } from '../../src/config/voicemail-conf.js';
import { encodeBody } from '../../src/email/body-charset.js';
import { createLogger } from '../../src/log.js';
import { readMailbox } from '../../src/spool/read-mailbox.js';
import type { SpoolMessage } from '../../src/spool/types.js';
import { FileSpoolStore } from '../../src/store/file-spool.js';
import { buildEmail } from '../../src/sync/build-email.js';
import { buildDirectory, type BoxInfo } from '../../src/sync/directory.js';

const SPOOL = fileURLToPath(new URL('../fixtures/asterisk/spool/', import.meta.url));
const REF = { context: 'default', mailbox: '1000' };

let dir: string;
let message: SpoolMessage;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vmb-charset-'));
  message = (await readMailbox(SPOOL, REF)).messages[0]!;
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
/** Builds the fixture voicemail's email as vmbridge would with this [general] and mailbox line; returns it with what was logged. */
async function emailWith(general: string, fullName = 'Jürgen Müller', body = 'emailbody=Grüße, ${VM_NAME}:\\n\\tNachricht von ${VM_CALLERID}, ${VM_DUR}.\\n'): Promise<{ raw: Buffer; logged: string[] }> {
  const file = join(dir, `voicemail-${++n}.conf`);
  await writeFile(file, `[general]\n${general}\n${body}\n\n[default]\n1000 => 1,${fullName},u1000@example.invalid,,imapuser=u1000|imappassword=p|tz=utc\n`);
  const settings = settingsSchema.parse({ imap: { host: 'mail.example.org' }, spool: { dir: SPOOL, voicemailConf: file }, email: { timezone: 'UTC', audio: 'original' } });
  const box: BoxInfo = buildDirectory(await readVoicemailConf(file), settings, new Map()).boxes.get('1000@default')!;
  const logged: string[] = [];
  const log = createLogger('info', { destination: new Writable({ write(chunk: Buffer, _e, cb) { logged.push(chunk.toString('utf8')); cb(); } }) });
  const built = await buildEmail({ settings, store: new FileSpoolStore({ spoolDir: SPOOL, lockmode: 'lockfile' }) }, box, message, log);
  if (!('raw' in built)) throw new Error(built.problem);
  return { raw: built.raw, logged };
}

/** The raw header block of the text part. */
function textPartHeaders(raw: Buffer): string {
  const text = raw.toString('latin1');
  const at = text.indexOf('Content-Type: text/plain');
  return text.slice(at, text.indexOf('\r\n\r\n', at));
}

describe('charset= of voicemail.conf', () => {
  it('ISO-8859-1: the text part is in Latin-1 bytes, labelled so, and reads as the UTF-8 email does', async () => {
    const latin = await emailWith('charset=ISO-8859-1');
    const utf8 = await emailWith('');
    assert.match(textPartHeaders(latin.raw), /^Content-Type: text\/plain; charset=ISO-8859-1\r\n/);
    assert.match(textPartHeaders(utf8.raw), /^Content-Type: text\/plain; charset=utf-8\r\n/, 'without charset= vmbridge writes UTF-8');
    assert.match(latin.raw.toString('latin1'), /Gr=FC=DFe, J=FCrgen M=FCller:/, 'ü and ß as their Latin-1 bytes');
    const [a, b] = [await simpleParser(latin.raw), await simpleParser(utf8.raw)];
    assert.equal(a.text, b.text);
    assert.ok(a.text!.startsWith('Grüße, Jürgen Müller:\n\tNachricht von "Test Caller" <5551234>, 0:06.'), a.text);
    assert.equal(a.subject, b.subject, 'headers are RFC 2047 UTF-8 either way: the same text');
    assert.equal(a.attachments.length, b.attachments.length);
    assert.deepEqual(a.attachments.map((x) => x.checksum), b.attachments.map((x) => x.checksum));
    assert.deepEqual(latin.logged, [], 'nothing to warn about');
  });

  it('another charset that holds the text: windows-1252 with the euro sign, KOI8-R with Cyrillic', async () => {
    const euro = await emailWith('charset=windows-1252', 'Zoë Example', 'emailbody=Kosten: 5 €, ${VM_NAME}\\n');
    assert.match(textPartHeaders(euro.raw), /charset=windows-1252/);
    assert.match(euro.raw.toString('latin1'), /Kosten: 5 =80, Zo=EB Example/);
    assert.equal((await simpleParser(euro.raw)).text, 'Kosten: 5 €, Zoë Example\n');
    const cyr = await emailWith('charset=KOI8-R', 'Юрий Иванов', 'emailbody=${VM_NAME}: новое сообщение\\n');
    assert.match(textPartHeaders(cyr.raw), /charset=KOI8-R/);
    assert.equal((await simpleParser(cyr.raw)).text, 'Юрий Иванов: новое сообщение\n');
  });

  it('a text the charset cannot hold goes as UTF-8, the mailbox warned about once, naming the setting and the character', async () => {
    const first = await emailWith('charset=ISO-8859-1', 'Юрий Иванов');
    assert.match(textPartHeaders(first.raw), /charset=utf-8/);
    assert.ok((await simpleParser(first.raw)).text!.startsWith('Grüße, Юрий Иванов:'), 'nothing lost');
    assert.equal(first.logged.length, 1);
    const warning = JSON.parse(first.logged[0]!) as Record<string, unknown>;
    assert.equal(warning['setting'], 'charset');
    assert.equal(warning['mailbox'], '1000@default');
    assert.match(String(warning['problem']), /charset=ISO-8859-1 cannot hold every character of the email's text \("Ю", U\+042E\)/);
    assert.match(String(warning['msg']), /its text is sent as UTF-8/);
    const again = await emailWith('charset=ISO-8859-1', 'Юрий Иванов');
    assert.deepEqual(again.logged, [], 'once per mailbox');
  });

  it('an unknown charset, or one that cannot carry mail text, goes as UTF-8 with the reason', async () => {
    const unknown = await emailWith('charset=klingon-1');
    assert.match(textPartHeaders(unknown.raw), /charset=utf-8/);
    assert.match(String((JSON.parse(unknown.logged[0]!) as Record<string, unknown>)['problem']), /charset=klingon-1 is not a character set vmbridge knows/);
    assert.match((encodeBody('x', 'UTF-16') as { fallback: string }).fallback, /UTF-16 does not write plain letters and line ends as ASCII does/);
    assert.match((encodeBody('x', 'ISO-8859-1"; x=y') as { fallback: string }).fallback, /is not a character set name/);
    assert.match((encodeBody('x', 'binary') as { fallback: string }).fallback, /not a character set vmbridge knows/);
  });

  it('UTF-8 (any spelling) leaves the email as it was', async () => {
    const plain = await emailWith('');
    assert.deepEqual((await emailWith('charset=UTF-8')).raw, plain.raw);
    assert.deepEqual((await emailWith('charset=utf8')).raw, plain.raw);
  });
});

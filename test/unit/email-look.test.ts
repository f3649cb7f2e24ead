/**
 * voicemail.conf's email options rendered as app_voicemail renders them, checked against mails a
 * real Asterisk 22.10.1 sent (test/fixtures/asterisk/mail) and against its documented rules.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import { boxEmailLook } from '../../src/config/mailbox-email.js';
import { readVoicemailConf } from '../../src/config/voicemail-conf.js';
import { ASTERISK_DATE_FORMAT, renderLook, type EmailLook, type MessageFacts } from '../../src/email/asterisk-look.js';
import { bcp47, strftime } from '../../src/email/strftime.js';
import { substituteEscapes, substituteVariables } from '../../src/email/template.js';
import { buildVoicemailEmail } from '../../src/imap/voicemail-email.js';
import { parseEnvelope } from '../../src/spool/envelope.js';
import type { SpoolMessage } from '../../src/spool/types.js';

const FIX = fileURLToPath(new URL('../fixtures/asterisk/', import.meta.url));
const INBOX = `${FIX}spool/voicemail/default/1000/INBOX/`;

describe('template escapes and variables', () => {
  it('\\n \\r \\t \\\\ become characters; any other escape is dropped and named', () => {
    assert.deepEqual(substituteEscapes('a\\nb\\tc\\rd\\\\e\\qf'), { text: 'a\nb\tc\rd\\ef', dropped: ['\\q'] });
  });
  it('${NAME}, unknown is empty, nested names, $ alone stays', () => {
    const vars = { VM_NAME: 'Alice', WHO: 'VM_NAME' };
    assert.equal(substituteVariables('Hi ${VM_NAME} ${NOPE}! ${${WHO}} costs $5', vars).text, 'Hi Alice ! Alice costs $5');
  });
  it('${NAME:offset:length} as Asterisk substrings, negative values from the end', () => {
    const vars = { V: '5551234567' };
    const sub = (t: string): string => substituteVariables(t, vars).text;
    assert.equal(sub('${V:0:3}'), '555');
    assert.equal(sub('${V:3}'), '1234567');
    assert.equal(sub('${V:-4}'), '4567');
    assert.equal(sub('${V:-4:2}'), '45');
    assert.equal(sub('${V:2:-3}'), '51234');
  });
  it('dialplan functions and expressions are left out and named, once each', () => {
    const r = substituteVariables('${SHELL(rm -rf /)} ${CALLERID(name)} $[1+2] ${SHELL(x)} ${VM_DUR}', { VM_DUR: '0:06' });
    assert.equal(r.text, '    0:06');
    assert.deepEqual([...r.unsupported].sort(), ['$[...]', 'CALLERID()', 'SHELL()']);
  });
  it('IF, ISNULL, LEN and $[...] as Asterisk evaluates them; arithmetic is reported, not guessed', () => {
    const vars = { A: '5551234', B: '5551234', C: '5550000', E: '' };
    const sub = (t: string) => substituteVariables(t, vars);
    assert.equal(sub('${IF($["${A}" = "${B}"]?left:forwarded)}').text, 'left');
    assert.equal(sub('${IF($["${A}" = "${C}"]?left:forwarded)}').text, 'forwarded');
    assert.equal(sub('${IF(${ISNULL(${E})}? empty : full )}').text, 'empty', 'values lose their blanks at both ends');
    assert.equal(sub('${IF(0?yes:no)}|${IF(?yes:no)}|${IF(x?yes:no)}').text, 'no|no|yes');
    assert.equal(sub('${LEN(${A})} $[${A} > 5550000] $[!(${A} = ${C}) & 1] $["${E}" | fallback]').text, '7 1 1 fallback');
    const r = sub('$[${A} + 1]');
    assert.equal(r.text, '');
    assert.deepEqual(r.unsupported, ['$[...]']);
  });
  it("the sample voicemail.conf's forwarding-aware emailbody renders both ways", () => {
    const body = 'Dear ${VM_NAME}:\\n\\n\\tjust wanted to let you know you were just ${IF($["${VM_CIDNUM}" = "${ORIG_VM_CIDNUM}"]?left:forwarded)} a ${VM_DUR} long message (number ${VM_MSGNUM})\\nin mailbox ${VM_MAILBOX} from ${VM_CALLERID}, on ${VM_DATE},\\n${IF($["${VM_CIDNUM}" = "${ORIG_VM_CIDNUM}"]?so:(originally sent by ${ORIG_VM_CALLERID} on ${ORIG_VM_DATE})\\nso)} you might want to check it when you get a chance.  Thanks!\\n\\n\\t\\t\\t\\t--Asterisk\\n';
    const vars = { VM_NAME: 'Alice', VM_CIDNUM: '5551234', ORIG_VM_CIDNUM: '5551234', VM_DUR: '0:06', VM_MSGNUM: '1', VM_MAILBOX: '1000', VM_CALLERID: '"Test" <5551234>', VM_DATE: 'today', ORIG_VM_CALLERID: '"Test" <5551234>', ORIG_VM_DATE: 'today' };
    const left = substituteVariables(substituteEscapes(body).text, vars);
    assert.deepEqual(left.unsupported, []);
    assert.match(left.text, /you were just left a 0:06 long message \(number 1\)\nin mailbox 1000 from "Test" <5551234>, on today,\nso you might want/);
    const fwd = substituteVariables(substituteEscapes(body).text, { ...vars, VM_CIDNUM: '5559999' });
    assert.match(fwd.text, /you were just forwarded a 0:06 long message/);
    assert.match(fwd.text, /\(originally sent by "Test" <5551234> on today\)\nso you might want/);
  });
  it('an unclosed ${ is copied as it is', () => assert.equal(substituteVariables('a ${VM_NAME', { VM_NAME: 'x' }).text, 'a ${VM_NAME'));
  it('never throws and never loops, whatever the template (property)', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (t) => {
      const r = substituteVariables(substituteEscapes(t).text, { VM_NAME: '${VM_NAME}' });
      assert.equal(typeof r.text, 'string');
    }), { numRuns: 500 });
  });
});

describe('emaildateformat (strftime)', () => {
  const t = 1795347157; // Sun 22 Nov 2026 11:32:37 UTC
  it("Asterisk's default format, as in its mails", () => assert.equal(strftime(ASTERISK_DATE_FORMAT, t, 'UTC'), 'Sunday, November 22, 2026 at 11:32:37 AM'));
  it('the mailbox time zone and locale', () => {
    assert.equal(strftime('%A %d. %B %Y %H:%M %Z', t, 'Europe/Berlin', 'de_DE.UTF-8'), 'Sonntag 22. November 2026 12:32 GMT+1');
    assert.equal(strftime('%a, %d %b %Y %H:%M:%S %z', t, 'America/New_York'), 'Sun, 22 Nov 2026 06:32:37 -0500');
    assert.equal(strftime('%e|%j|%u|%w|%y|%%|%D|%F|%T', t, 'UTC'), '22|326|7|0|26|%|11/22/26|2026-11-22|11:32:37');
  });
  it('locale names: de_DE.UTF-8 -> de-DE; C, POSIX and nonsense -> en-US', () => {
    assert.equal(bcp47('de_DE.UTF-8'), 'de-DE');
    assert.equal(bcp47('C'), 'en-US');
    assert.equal(bcp47('not a locale!'), 'en-US');
  });
});

describe('the email a real Asterisk sent, rendered again', () => {
  const facts = (over: Partial<MessageFacts> = {}): MessageFacts => ({
    fullName: 'Alice Example', context: 'default', mailbox: '1000', msgnum: 1, durationSeconds: 6, cidName: 'Test Caller', cidNum: '5551234',
    callerid: '"Test Caller" <5551234>', category: '', flag: '', origtime: 1795347157, timezone: 'UTC', messageFile: '/var/spool/asterisk/voicemail/default/1000/INBOX/msg0000', ...over,
  });

  it("the fixture's voicemail.conf with Asterisk's wording gives its From, Subject and body, byte for byte", async () => {
    const conf = await readVoicemailConf(`${FIX}config/voicemail.conf`);
    const box = conf.boxes.find((b) => b.mailbox === '1000')!;
    const look = boxEmailLook(conf, box, 'asterisk');
    const captured = await simpleParser(await readFile(`${FIX}mail/1000-msg0000-attach-wav49.eml`));
    // Asterisk dates its mail when it sends it (here 11:32:37); vmbridge when the message was left.
    const r = renderLook(look, facts({ origtime: 1795347157 }), 'vm');
    assert.deepEqual(r.from, { name: 'Voicemail System', address: 'asterisk@pbx.example.invalid' });
    assert.equal(`"${r.from!.name}" <${r.from!.address}>`, captured.headers.get('from') && (captured.from?.text ?? ''));
    assert.equal(r.subject, captured.subject);
    assert.equal(r.body?.trimEnd(), captured.text?.trimEnd());
  });

  it('pbxskip drops [PBX]:, a flag comes before "message", serveremail without @ gets the host name', () => {
    const base: EmailLook = { wording: 'asterisk', emaildateformat: ASTERISK_DATE_FORMAT, pbxskip: true, serveremail: 'vm' };
    const r = renderLook(base, facts({ flag: 'Urgent', msgnum: 3 }), 'pbx1');
    assert.equal(r.subject, 'New Urgent message 3 in mailbox 1000');
    assert.deepEqual(r.from, { name: 'Asterisk PBX', address: 'vm@pbx1' });
  });

  it('an admin template with every VM_ variable', () => {
    const look: EmailLook = {
      wording: 'vmbridge', emaildateformat: '%Y-%m-%d %H:%M', pbxskip: false, fromstring: 'PBX for ${VM_NAME}',
      emailsubject: '[${VM_MAILBOX}@${VM_CONTEXT}] ${VM_CIDNAME} (${VM_CIDNUM}) ${VM_DUR} #${VM_MSGNUM} ${VM_FLAG}',
      emailbody: 'Dear ${VM_NAME},\\n\\tfrom ${VM_CALLERID} on ${VM_DATE}; ${VM_CATEGORY}; ${VM_MESSAGEFILE}\\n${ORIG_VM_CALLERID}',
    };
    const r = renderLook(look, facts({ flag: 'Urgent' }), 'h');
    assert.equal(r.from?.name, 'PBX for Alice Example');
    assert.equal(r.from?.address, 'asterisk@h');
    assert.equal(r.subject, '[1000@default] Test Caller (5551234) 0:06 #1 Urgent');
    assert.equal(r.body, 'Dear Alice Example,\n\tfrom "Test Caller" <5551234> on 2026-11-22 11:32; no category; /var/spool/asterisk/voicemail/default/1000/INBOX/msg0000\n"Test Caller" <5551234>');
  });

  it('an unknown caller, as Asterisk words it', () => {
    const look: EmailLook = { wording: 'vmbridge', emaildateformat: ASTERISK_DATE_FORMAT, pbxskip: false, emailsubject: '${VM_CALLERID}|${VM_CIDNAME}|${VM_CIDNUM}' };
    assert.equal(renderLook(look, facts({ cidName: '', cidNum: '' }), 'h').subject, 'an unknown caller|an unknown caller|an unknown caller');
  });

  it('nothing set and vmbridge wording: nothing rendered (vmbridge\'s own From, Subject, body)', () => {
    const r = renderLook({ wording: 'vmbridge', emaildateformat: ASTERISK_DATE_FORMAT, pbxskip: false }, facts(), 'h');
    assert.deepEqual(r, { unsupported: [], droppedEscapes: [] });
  });
});

describe('the whole email with templates: no header injection, whatever template and caller', () => {
  const message = async (callerid: string): Promise<SpoolMessage> => {
    const envelope = { ...parseEnvelope(await readFile(`${INBOX}msg0000.txt`), `${INBOX}msg0000.txt`), callerid };
    return { id: envelope.msgId!, derivedId: false, folder: 'INBOX', msgnum: 0, txtPath: `${INBOX}msg0000.txt`, audio: [{ ext: 'gsm', path: `${INBOX}msg0000.gsm` }], envelope };
  };
  it('CR/LF in the subject template and the caller name stay on one line; From is one address', async () => {
    await fc.assert(fc.asyncProperty(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), async (tmpl, name) => {
      const look: EmailLook = { wording: 'asterisk', emaildateformat: ASTERISK_DATE_FORMAT, pbxskip: false, fromstring: `${tmpl}\\r\\nBcc: x@example.com`, emailsubject: `${tmpl}\\nBcc: victim@example.com\\n\${VM_CIDNAME}`, emailbody: `${tmpl}\${VM_CIDNAME}` };
      const problems: string[] = [];
      const raw = await buildVoicemailEmail({
        ref: { context: 'default', mailbox: '1000' }, message: await message(`"${name}\r\nBcc: y@example.com" <5551234>`), owner: { fullName: 'Alice', email: 'alice@example.invalid' }, timezone: 'UTC',
        from: '"Voicemail" <voicemail@example.org>', serverName: 'PBX', messageIdDomain: 'vmbridge.invalid', readAudio: (p) => readFile(p), attachments: [], look, hostname: 'pbx', onTemplateProblem: (p) => problems.push(...p),
      });
      const head = raw.toString('latin1').split('\r\n\r\n')[0]!;
      assert.equal(/^bcc:/im.test(head), false, head);
      assert.equal(/\r(?!\n)|(?<!\r)\n/.test(raw.toString('latin1')), false, 'no bare CR or LF');
      const parsed = await simpleParser(raw);
      assert.equal(parsed.from?.value.length, 1);
      assert.equal(parsed.from?.value[0]?.address, 'asterisk@pbx');
      assert.equal(/[\r\n]/.test(parsed.subject ?? ''), false);
    }), { numRuns: 100 });
  });
});

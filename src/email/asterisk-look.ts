/**
 * The email as the administrator configured it for Asterisk: voicemail.conf's fromstring=,
 * serveremail=, emailsubject=, emailbody=, emaildateformat=, locale= and pbxskip=, rendered as
 * app_voicemail's make_email_file renders them (docs/email-templates.md). Pure: the facts of one
 * message come in, the From, Subject and body text go out; vmbridge's own wording is used for
 * whatever voicemail.conf leaves unset (or Asterisk's, with email.wording: asterisk).
 *
 * Differences, on purpose: the date is when the message was left (Asterisk uses the moment it
 * sends the mail, which an email that may be built again must not depend on), and every value
 * from the caller is cleaned of control characters before it is put anywhere.
 */
import { substituteEscapes, substituteVariables } from './template.js';
import { strftime } from './strftime.js';

/** Asterisk's emaildateformat default. */
export const ASTERISK_DATE_FORMAT = '%A, %B %d, %Y at %r';

export interface EmailLook {
  /** Whose words where voicemail.conf has no template: vmbridge's (default) or Asterisk's. */
  readonly wording: 'vmbridge' | 'asterisk';
  readonly fromstring?: string;
  readonly serveremail?: string;
  readonly emailsubject?: string;
  readonly emailbody?: string;
  readonly emaildateformat: string;
  readonly locale?: string;
  readonly pbxskip: boolean;
}

/** What one message contributes to the template variables. */
export interface MessageFacts {
  readonly fullName: string;
  readonly context: string;
  readonly mailbox: string;
  /** 1-based, as ${VM_MSGNUM}. */
  readonly msgnum: number;
  readonly durationSeconds: number | undefined;
  /** Clean (no control characters); '' when unknown. */
  readonly cidName: string;
  readonly cidNum: string;
  /** The envelope's callerid, cleaned. */
  readonly callerid: string;
  readonly category: string;
  readonly flag: string;
  readonly origtime: number;
  readonly timezone: string;
  /** The message's path in the spool without extension (${VM_MESSAGEFILE}). */
  readonly messageFile: string;
}

export interface RenderedLook {
  /** undefined: vmbridge's own (email.from, its subject, its body). */
  readonly from?: { readonly name: string; readonly address: string };
  readonly subject?: string;
  readonly body?: string;
  /** Dialplan functions and expressions the templates use that vmbridge cannot evaluate. */
  readonly unsupported: readonly string[];
  /** Escapes Asterisk would drop too (anything but \n \r \t \\). */
  readonly droppedEscapes: readonly string[];
}

const UNKNOWN = 'an unknown caller';

function duration(seconds: number | undefined): string {
  const s = Math.max(0, Math.floor(seconds ?? 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** The variables prep_email_sub_vars sets on the channel the mail is made on. */
export function templateVariables(look: EmailLook, m: MessageFacts): Record<string, string> {
  const date = strftime(look.emaildateformat, m.origtime, m.timezone, look.locale);
  const merged = m.cidName && m.cidNum ? `"${m.cidName}" <${m.cidNum}>` : m.cidName || m.cidNum;
  return {
    VM_NAME: m.fullName,
    VM_DUR: duration(m.durationSeconds),
    VM_MSGNUM: String(m.msgnum),
    VM_CONTEXT: m.context,
    VM_MAILBOX: m.mailbox,
    VM_CALLERID: merged || UNKNOWN,
    VM_CIDNAME: m.cidName || UNKNOWN,
    VM_CIDNUM: m.cidNum || UNKNOWN,
    VM_DATE: date,
    VM_CATEGORY: m.category || 'no category',
    VM_FLAG: m.flag,
    VM_MESSAGEFILE: m.messageFile,
    // Asterisk reads these from the message's own .txt: for a forwarded message they describe the original call.
    ORIG_VM_CALLERID: m.callerid,
    ORIG_VM_CIDNAME: m.cidName,
    ORIG_VM_CIDNUM: m.cidNum,
    ORIG_VM_DATE: date,
  };
}

export function renderLook(look: EmailLook, m: MessageFacts, hostname: string): RenderedLook {
  const vars = templateVariables(look, m);
  const unsupported = new Set<string>();
  const dropped = new Set<string>();
  const render = (template: string): string => {
    const escaped = substituteEscapes(template);
    for (const d of escaped.dropped) dropped.add(d);
    const r = substituteVariables(escaped.text, vars);
    for (const u of r.unsupported) unsupported.add(u);
    return r.text;
  };
  const asterisk = look.wording === 'asterisk';

  let from: RenderedLook['from'];
  if (look.fromstring !== undefined || look.serveremail !== undefined || asterisk) {
    const server = look.serveremail || 'asterisk';
    from = { name: look.fromstring ? render(look.fromstring) : 'Asterisk PBX', address: server.includes('@') ? server : `${server}@${hostname}` };
  }

  let subject: string | undefined;
  if (look.emailsubject) subject = render(look.emailsubject);
  else if (asterisk) subject = `${look.pbxskip ? '' : '[PBX]: '}New ${m.flag ? `${m.flag} ` : ''}message ${m.msgnum} in mailbox ${m.mailbox}`;

  let body: string | undefined;
  if (look.emailbody !== undefined) body = render(look.emailbody);
  else if (asterisk) {
    body = `Dear ${m.fullName}:\n\n\tJust wanted to let you know you were just left a ${vars['VM_DUR']} long message (number ${m.msgnum})\n`
      + `in mailbox ${m.mailbox} from ${m.cidName || m.cidNum || UNKNOWN}, on ${vars['VM_DATE']} so you might\n`
      + 'want to check it when you get a chance.  Thanks!\n\n\t\t\t\t--Asterisk\n';
  }
  return {
    ...(from ? { from } : {}),
    ...(subject !== undefined ? { subject } : {}),
    ...(body !== undefined ? { body } : {}),
    unsupported: [...unsupported],
    droppedEscapes: [...dropped],
  };
}

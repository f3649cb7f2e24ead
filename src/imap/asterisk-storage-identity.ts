/**
 * The identity of an email Asterisk's own IMAP storage wrote (IMAP_STORAGE, make_email_file with
 * imap=1): its X-Asterisk-VM-Message-ID (the voicemail's msg_id), X-Asterisk-VM-Context and
 * X-Asterisk-VM-Extension headers. A site that moves from IMAP storage to the file spool keeps
 * those emails: vmbridge takes each one as the email of the voicemail with that msg_id in that
 * mailbox (the plan's adopt row), instead of appending a second copy.
 */
import { isSafeName } from '../spool/names.js';
import type { MailboxRef } from '../spool/types.js';

/**
 * The header fields an identity is read from: vmbridge's Message-ID, else Asterisk's own. Fetched with each email's identity; x-vmbridge-transcript marks a copy whose transcript
 * is still pending (observe.ts).
 */
export const IDENTITY_HEADER_FIELDS = ['message-id', 'x-asterisk-vm-message-id', 'x-asterisk-vm-context', 'x-asterisk-vm-extension', 'x-vmbridge-transcript'];

const SANE_MSG_ID = /^[\x21-\x7e]{1,64}$/;

/** Header name (lower case) -> first value, from a raw header block (folded lines joined). */
function headerValues(raw: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  const text = raw.toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!out.has(name)) out.set(name, line.slice(colon + 1).trim());
  }
  return out;
}

export function asteriskStorageIdentity(raw: Buffer | undefined): { ref: MailboxRef; id: string } | undefined {
  if (!raw) return undefined;
  const h = headerValues(raw);
  const id = h.get('x-asterisk-vm-message-id');
  const context = h.get('x-asterisk-vm-context');
  const mailbox = h.get('x-asterisk-vm-extension');
  if (!id || !context || !mailbox || !SANE_MSG_ID.test(id) || !isSafeName(context) || !isSafeName(mailbox)) return undefined;
  return { ref: { context, mailbox }, id };
}

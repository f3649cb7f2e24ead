/**
 * imapvmshareid= of a mailbox: what Asterisk's IMAP storage writes in X-Asterisk-VM-Extension
 * instead of the mailbox number (make_email_file), and searches for when it counts and opens the
 * mailbox's messages (messagecount, init_mailstream's callers), together with X-Asterisk-VM-Context.
 * Mailboxes with one share id on one IMAP account see one set of emails there.
 *
 * Asterisk reads it per mailbox only (apply_option; [general] has no such option) into an 80-byte
 * buffer, so it keeps at most 79 characters; empty means the mailbox number.
 */
import { isSafeName } from '../spool/names.js';
import type { VoicemailBox } from './voicemail-conf.js';

/** ast_copy_string into char imapvmshareid[80]. */
const ASTERISK_SHARE_ID_MAX = 79;

export type AsteriskExtension = { readonly extension: string; readonly shared: boolean } | { readonly problem: string };

/** The X-Asterisk-VM-Extension of a mailbox's emails, or why it cannot be used in a header. */
export function boxAsteriskExtension(box: VoicemailBox): AsteriskExtension {
  const value = Object.hasOwn(box.options, 'imapvmshareid') ? box.options['imapvmshareid']!.slice(0, ASTERISK_SHARE_ID_MAX) : '';
  if (value === '') return { extension: box.mailbox, shared: false };
  // It goes into a header vmbridge writes and is compared with headers others wrote: letters,
  // digits and _ . + - only, as mailbox names.
  if (!isSafeName(value)) {
    return { problem: `imapvmshareid=${JSON.stringify(value)} of mailbox ${box.mailbox} in [${box.context}] holds characters other than letters, digits and _ . + -; its emails could not be told apart, so it is not synced` };
  }
  return { extension: value, shared: true };
}

/**
 * The mailboxes vmbridge keeps in step, straight from voicemail.conf (no second user list): who owns
 * each, in which time zone, and which IMAP account holds its voicemail.
 */
import type { Settings } from '../config/schema.js';
import { boxBackupDeleted, boxMaxmsg, boxOption, boxTimezone, type VoicemailBox, type VoicemailConf } from '../config/voicemail-conf.js';
import type { AttachmentPolicy } from '../audio/formats.js';
import { boxAttachmentPolicy } from '../config/mailbox-audio.js';
import { boxEmailLook } from '../config/mailbox-email.js';
import { boxAsteriskExtension } from '../config/mailbox-share-id.js';
import type { EmailLook } from '../email/asterisk-look.js';
import { accountKey, type ImapAccount } from '../imap/account.js';
import { boxOn, mailboxKey, type MailboxRef } from '../spool/types.js';
import { isTimeZone } from '../config/time-zone.js';
import { ownServerProblem } from '../config/imap-from-voicemail-conf.js';

export interface BoxInfo {
  readonly ref: MailboxRef;
  readonly owner: { readonly fullName: string; readonly email: string };
  readonly timezone: string;
  readonly account: ImapAccount;
  /** voicemail.conf maxmsg (the mailbox's, else [general]'s, else 100): Asterisk refuses callers at it. */
  readonly maxmsg?: number;
  /** voicemail.conf backupdeleted: deleted messages kept in Deleted/ (0: none). */
  readonly backupDeleted?: number;
  /** The audio its emails carry (attach=, attachfmt=, format=, vmbridge_audio=, email.audio). Absent: every recorded format. */
  readonly attachments?: AttachmentPolicy;
  /** voicemail.conf's email options (fromstring=, emailsubject=, ...). Absent: vmbridge's own look. */
  readonly emailLook?: EmailLook;
  /** voicemail.conf [general] charset=, when set: the character set of the text part (src/email/body-charset.ts). */
  readonly charset?: string;
  /** X-Asterisk-VM-Extension of its emails: imapvmshareid=, else the mailbox number. Absent: the number. */
  readonly asteriskExtension?: string;
  /**
   * The other mailboxes of the same context and IMAP account with the same Asterisk extension: with
   * Asterisk's IMAP storage they all saw the same emails (src/sync/shared-extension.ts). Empty or
   * absent: none.
   */
  readonly shareSiblings?: readonly MailboxRef[];
}

export interface Directory {
  readonly boxes: ReadonlyMap<string, BoxInfo>;
  /** Boxes that could not be mapped to an IMAP account, each with the reason. */
  readonly problems: readonly { readonly mailbox: string; readonly file: string; readonly line: number; readonly problem: string }[];
}

/** `server`: the voicemail server whose voicemail.conf this is (undefined: the main one). */
export function buildDirectory(conf: VoicemailConf, settings: Settings, passwords: ReadonlyMap<string, string>, server?: string): Directory {
  const boxes = new Map<string, BoxInfo>();
  // Asterisk reads charset= in [general] only (load_config); unset, vmbridge writes UTF-8.
  const charset = (conf.general['charset'] ?? '').trim();
  const problems: { mailbox: string; file: string; line: number; problem: string }[] = [];
  for (const box of conf.boxes) {
    const ref: MailboxRef = boxOn(server, box.context, box.mailbox);
    const key = mailboxKey(ref);
    const email = box.emails[0] ?? '';
    const user = boxOption(conf, box, 'imapuser') ?? fillTemplate(settings.imap.login.userTemplate, box, email);
    if (!user) {
      problems.push({ mailbox: key, file: box.file, line: box.line, problem: `no IMAP user: set imapuser= for it, or an imap.login.userTemplate that gives one (${settings.imap.login.userTemplate} is empty here)` });
      continue;
    }
    if (/[\r\n\0]/.test(user)) {
      problems.push({ mailbox: key, file: box.file, line: box.line, problem: 'the IMAP user name contains a control character' });
      continue;
    }
    const elsewhere = ownServerProblem(box.options, settings.imap);
    if (elsewhere) {
      problems.push({ mailbox: key, file: box.file, line: box.line, problem: elsewhere });
      continue;
    }
    const password = boxOption(conf, box, 'imappassword') ?? boxOption(conf, box, 'imapsecret') ?? passwords.get(user);
    if (settings.imap.login.mode === 'per-user' && password === undefined) {
      problems.push({ mailbox: key, file: box.file, line: box.line, problem: `no password for IMAP user ${JSON.stringify(user)}: set imappassword= or add it to imap.login.passwordsFile` });
      continue;
    }
    let timezone = boxTimezone(conf, box) ?? settings.email.timezone;
    if (!isTimeZone(timezone)) {
      problems.push({ mailbox: key, file: box.file, line: box.line, problem: `unknown time zone ${JSON.stringify(timezone)}: dates use ${settings.email.timezone} instead` });
      timezone = settings.email.timezone;
    }
    const asterisk = boxAsteriskExtension(box);
    if ('problem' in asterisk) {
      problems.push({ mailbox: key, file: box.file, line: box.line, problem: asterisk.problem });
      continue;
    }
    const audio = boxAttachmentPolicy(conf, box, settings.email.audio);
    if (audio.problem) problems.push({ mailbox: key, file: box.file, line: box.line, problem: audio.problem });
    boxes.set(key, {
      ref,
      owner: { fullName: box.fullName || box.mailbox, email },
      timezone,
      account: settings.imap.login.mode === 'master' ? { user } : { user, password: password as string },
      maxmsg: boxMaxmsg(conf, box),
      backupDeleted: boxBackupDeleted(conf, box),
      attachments: audio.policy,
      emailLook: boxEmailLook(conf, box, settings.email.wording),
      asteriskExtension: asterisk.extension,
      ...(charset !== '' ? { charset } : {}),
    });
  }
  return { boxes: withShareSiblings(boxes), problems };
}

/**
 * Each mailbox with the mailboxes that see the same emails of Asterisk's IMAP storage: one IMAP
 * account, one context, one X-Asterisk-VM-Extension (a share id, or a number that another
 * mailbox's share id repeats, as Asterisk's search for either finds both).
 */
function withShareSiblings(boxes: Map<string, BoxInfo>): Map<string, BoxInfo> {
  const groups = new Map<string, MailboxRef[]>();
  const groupOf = (b: BoxInfo): string => JSON.stringify([accountKey(b.account), b.ref.context, b.asteriskExtension ?? b.ref.mailbox]);
  for (const b of boxes.values()) {
    const list = groups.get(groupOf(b)) ?? [];
    list.push(b.ref);
    groups.set(groupOf(b), list);
  }
  const out = new Map<string, BoxInfo>();
  for (const [key, b] of boxes) {
    const siblings = (groups.get(groupOf(b)) ?? []).filter((r) => r.mailbox !== b.ref.mailbox);
    out.set(key, siblings.length > 0 ? { ...b, shareSiblings: siblings } : b);
  }
  return out;
}

function fillTemplate(template: string, box: VoicemailBox, email: string): string {
  if (template.includes('{email}') && !email) return '';
  return template.replaceAll('{mailbox}', box.mailbox).replaceAll('{context}', box.context).replaceAll('{email}', email);
}


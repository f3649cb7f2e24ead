/**
 * The mails administrators get: what they say (pure), and how they leave (nodemailer over SMTP).
 *
 * Each mail answers four questions an administrator reading it on a phone should not have to
 * look up: who (voicemail box, owner, IMAP user), how full (in numbers a person reads: KiB/MiB,
 * messages, percent), which limit (quota resource and root, or Asterisk's maxmsg), and what
 * happens next and how to make room.
 */
import nodemailer from 'nodemailer';
import type { Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { Settings } from '../config/schema.js';
import type { AlertBox, AlertJob, BreakerAlert, MaxmsgAlert, QuotaAlert } from '../queue/alert-queue.js';
import { refOfJob } from '../queue/box-fields.js';
import { mailboxKey } from '../spool/types.js';
import { summaryLines } from './flood-cap.js';
import { certificateError, tlsConnectOptions } from '../tls.js';
import type { HeldAlert } from './state.js';

export type AlertSettings = Settings['alerts'];
export type SmtpSettings = NonNullable<AlertSettings['smtp']>;

export interface AlertMail {
  readonly subject: string;
  readonly text: string;
  readonly kind: AlertJob['kind'];
}

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.5 KiB", 5 -> "5 bytes": what a person reads at a glance. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} ${Math.round(n) === 1 ? 'byte' : 'bytes'}`;
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const shown = v >= 100 ? Math.round(v).toString() : (Math.round(v * 10) / 10).toString();
  return `${shown} ${UNITS[i]}`;
}

export function formatAmount(n: number, unit: 'bytes' | 'messages' | 'units'): string {
  if (unit === 'bytes') return formatBytes(n);
  if (unit === 'messages') return `${n} ${n === 1 ? 'message' : 'messages'}`;
  return String(n);
}

/** "50.8 KiB of 100 MiB", "4 of 5 messages". */
export function formatUsage(usage: number, limit: number, unit: 'bytes' | 'messages' | 'units'): string {
  if (unit === 'bytes') return `${formatBytes(usage)} of ${formatBytes(limit)}`;
  return `${usage} of ${formatAmount(limit, unit)}`;
}

/** Rounded down: "99%" for a mailbox that is not quite full, never a premature "100%". */
export function formatPercent(usage: number, limit: number): string {
  return `${Math.floor((usage * 100) / limit)}%`;
}

function boxLabel(b: AlertBox): string {
  return mailboxKey(refOfJob(b));
}

function ownerLabel(b: AlertBox): string {
  const name = b.ownerName || b.mailbox;
  return b.ownerEmail ? `${name} <${b.ownerEmail}>` : name;
}

function boxesSubject(boxes: readonly AlertBox[]): string {
  const first = boxes[0];
  if (!first) return 'voicemail box';
  return boxes.length === 1 ? `voicemail box ${boxLabel(first)}` : `voicemail boxes ${boxLabel(first)} and ${boxes.length - 1} more`;
}

/** What the wording depends on besides the alert settings. */
export interface MailContext {
  /** Mail-client deletions reach the phone (sync.imapToSpool). */
  readonly imapToSpool?: boolean;
}

function quotaMail(a: QuotaAlert, settings: AlertSettings, ctx: MailContext): AlertMail {
  const main = a.readings.find((r) => r.resource === a.resource);
  const who = boxesSubject(a.boxes);
  const full = a.refusal !== undefined || a.threshold >= 100;
  const howFull = main ? `${formatPercent(main.usage, main.limit)} full` : 'full';
  const subject = a.refusal !== undefined
    ? `[vmbridge] Mailbox of ${who} is full: new voicemail waits in the spool (${a.resource} quota)`
    : `[vmbridge] Mailbox of ${who} is ${howFull} (${a.resource} quota, threshold ${a.threshold}%)`;

  const lines: string[] = [];
  if (a.refusal !== undefined) {
    lines.push(`The mail server refused to store a voicemail for ${who}: the mailbox of IMAP user ${a.imapUser} is full.`);
    lines.push(`The server said: ${a.refusal}`);
  } else {
    lines.push(`The mailbox of IMAP user ${a.imapUser}, which holds ${who}, has reached ${a.threshold}% of its ${a.resource} quota.`);
  }
  lines.push('', 'Who');
  for (const b of a.boxes) lines.push(`  Voicemail box:  ${boxLabel(b)}, owner ${ownerLabel(b)}`);
  lines.push(`  IMAP user:      ${a.imapUser}`);

  lines.push('', 'How full');
  if (a.readings.length === 0) {
    lines.push('  The server does not report its quota (no QUOTA extension, or no quota root for this folder).');
  }
  for (const r of a.readings) {
    const mark = r.resource === a.resource ? '   <- this alert' : '';
    const root = r.root ? `, quota root "${r.root}"` : '';
    lines.push(`  ${r.resource}: ${formatUsage(r.usage, r.limit, r.unit)} (${formatPercent(r.usage, r.limit)})${root}${mark}`);
  }
  if (a.refusal !== undefined && main && main.usage < main.limit) {
    lines.push('  (The reading shows some room left, but not enough for the voicemail that was refused.)');
  }

  const higher = settings.quotaThresholds.filter((t) => t > a.threshold).sort((x, y) => x - y);
  lines.push('', 'What happens next');
  if (full) {
    lines.push(
      '  The mail server refuses new voicemail emails for this mailbox. Nothing is lost: new voicemail',
      "  stays in Asterisk's spool (callers can still leave messages, the phone still shows and plays",
      `  them) and vmbridge tries again, first after ${settings.quotaRetrySeconds} s, then less often (at most every`,
      `  ${settings.quotaRetryMaxSeconds} s), until there is room. The waiting voicemail then arrives in the mailbox by`,
      '  itself, once each.',
    );
  } else {
    lines.push('  Nothing yet: voicemail still reaches the mailbox.');
    if (higher.length > 0) lines.push(`  You will get one more mail at each of ${higher.map((t) => `${t}%`).join(', ')}.`);
    lines.push(
      '  At 100% the mail server refuses new voicemail emails; voicemail then waits in the spool and',
      '  vmbridge retries until there is room.',
    );
  }
  lines.push(`  This alert is not repeated until usage has fallen below ${Math.max(0, a.threshold - settings.rearmMarginPercent)}% and risen again.`);

  lines.push(
    '',
    'How to make room',
    `  - Ask ${a.boxes[0] ? ownerLabel(a.boxes[0]) : 'the owner'} to delete mail they no longer need (voicemail emails`,
    '    included) and to empty the Trash folder, which counts towards the quota on most servers.',
    ctx.imapToSpool
      ? '    Deleting a voicemail email also deletes the voicemail on the phone.'
      : '    Deleting a voicemail email leaves the voicemail on the phone.',
    `  - Or raise the quota of IMAP user ${a.imapUser} on the mail server.`,
  );
  return { kind: 'quota', subject, text: `${lines.join('\n')}\n` };
}

function maxmsgMail(a: MaxmsgAlert, ctx: MailContext): AlertMail {
  const who = boxLabel(a.box);
  const subject = `[vmbridge] Voicemail box ${who}: ${a.folder} holds ${a.count} of ${a.maxmsg} messages, callers will be refused`;
  const what = a.folder === 'Urgent' ? 'urgent messages' : 'new messages';
  const lines = [
    `Voicemail box ${who} holds ${a.count} ${what} in its ${a.folder} folder. Asterisk's limit for this mailbox (maxmsg) is ${a.maxmsg}.`,
    '',
    'Who',
    `  Voicemail box:  ${who}, owner ${ownerLabel(a.box)}`,
    '',
    'How full',
    `  ${a.folder}: ${a.count} of ${a.maxmsg} messages (${formatPercent(a.count, a.maxmsg)}), limit: maxmsg in voicemail.conf`,
    '',
    'What happens next',
    `  When ${a.folder} holds ${a.maxmsg} messages, Asterisk refuses callers ("mailbox full"): their messages`,
    '  are not recorded at all, so nothing can be delivered later.',
    '',
    'How to make room',
    ...(ctx.imapToSpool
      ? [
          '  - The owner listens to the new messages on the phone, or reads their emails (heard or read, they',
          '    move to Old), and deletes those no longer needed, on the phone or in the mail client.',
        ]
      : [
          '  - The owner listens to the new messages on the phone (heard messages move to Old) and deletes',
          '    those no longer needed there.',
        ]),
    '  - Or raise maxmsg for this mailbox in voicemail.conf (at most 9999) and reload app_voicemail.',
  ];
  return { kind: 'maxmsg', subject, text: `${lines.join('\n')}\n` };
}

export function summaryMail(held: readonly HeldAlert[], settings: AlertSettings): AlertMail {
  const subject = `[vmbridge] ${held.length} more ${held.length === 1 ? 'alert was' : 'alerts were'} held back (at most ${settings.maxMailsPerHour} alert mails per hour)`;
  const lines = [
    `vmbridge sends at most ${settings.maxMailsPerHour} alert mails in any hour (alerts.maxMailsPerHour). These alerts were not`,
    'mailed one by one; each is also in the log:',
    '',
    ...summaryLines(held),
    '',
    'So many alerts at once usually mean one cause for all: quotas set too low for everyone, or a',
    'mail server refusing every message. Check the mail server first.',
  ];
  return { kind: 'summary', subject, text: `${lines.join('\n')}\n` };
}

/** The mail for a quota or maxmsg alert (summaries are made by summaryMail from what was held). */
export function composeAlertMail(job: Exclude<AlertJob, { kind: 'summary' }>, settings: AlertSettings, ctx: MailContext = {}): AlertMail {
  if (job.kind === 'breaker') return breakerMail(job);
  return job.kind === 'quota' ? quotaMail(job, settings, ctx) : maxmsgMail(job, ctx);
}

function breakerMail(a: BreakerAlert): AlertMail {
  const minutes = Math.round(a.windowSeconds / 60);
  return {
    kind: 'breaker',
    subject: `[vmbridge] Deletions stopped: ${a.deletions} planned within ${minutes} min (limit ${a.max})`,
    text: [
      `vmbridge planned ${a.deletions} deletions of voicemail or voicemail emails within ${minutes} minutes, over every`,
      `mailbox; the limit is ${a.max} (sync.deleteBreaker). That is more likely a wrong spool path, IMAP account or`,
      'folder mapping than users cleaning up, so every deletion is held from now on, on both sides.',
      '',
      `Opened:        ${a.since}, by the plan of mailbox ${a.mailbox}`,
      '',
      'What still happens',
      '  New voicemail becomes email, read/filed changes are carried both ways, lamps are right.',
      '  Nothing is deleted, neither voicemail nor email.',
      '',
      'What to do',
      "  Look at what vmbridge would delete: vmbridge sync --dry-run (per mailbox: --mailbox M@C).",
      '  If the deletions are wanted, release the breaker: vmbridge sync --release-deletes',
      '  (then the held deletions are made at the next reconcile of each mailbox).',
      '',
    ].join('\n'),
  };
}

/** Mail can go out only with recipients and a server. */
export function mailConfigured(settings: AlertSettings): settings is AlertSettings & { smtp: SmtpSettings } {
  return settings.to.length > 0 && settings.smtp !== undefined;
}

export type AlertTransport = Transporter<SMTPTransport.SentMessageInfo>;

/**
 * The SMTP transport of `alerts.smtp`, for sending and for `vmbridge doctor`'s check. A hanging
 * server must fail the job (to be retried), not hold the worker forever: hence the timeouts.
 */
export function createAlertTransport(smtp: SmtpSettings, timeouts: { connectMs: number; socketMs: number } = { connectMs: 30_000, socketMs: 60_000 }): AlertTransport {
  const options: SMTPTransport.Options = {
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    requireTLS: smtp.requireTLS,
    tls: tlsConnectOptions(smtp.tls),
    connectionTimeout: timeouts.connectMs,
    greetingTimeout: timeouts.connectMs,
    socketTimeout: timeouts.socketMs,
  };
  if (smtp.auth?.pass !== undefined) options.auth = { user: smtp.auth.user, pass: smtp.auth.pass };
  return nodemailer.createTransport(options);
}

/** The error of a failed send or verify: a refused certificate says which setting fixes it. */
export function smtpError(err: unknown, smtp: SmtpSettings): unknown {
  return certificateError(err, `SMTP server ${smtp.host}:${smtp.port}`, 'alerts.smtp.tls', smtp.tls) ?? err;
}

export async function sendAlertMail(transport: AlertTransport, settings: AlertSettings, mail: AlertMail): Promise<string> {
  const sending = transport.sendMail({
    from: settings.from,
    to: settings.to,
    subject: mail.subject,
    text: mail.text,
    headers: {
      // RFC 3834: no out-of-office replies or other automatic answers to this mail.
      'Auto-Submitted': 'auto-generated',
      'X-Vmbridge-Alert': mail.kind,
    },
  });
  const info = await sending.catch((err: unknown) => {
    throw settings.smtp ? smtpError(err, settings.smtp) : err;
  });
  return info.messageId;
}

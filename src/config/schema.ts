/**
 * The settings vmbridge reads from its YAML file (and environment overrides).
 * Every key here is documented in config/vmbridge.example.yaml; keep the two in step.
 */
import { z } from 'zod';

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * A list, also accepted as comma-separated text: that is how a list arrives from an environment
 * variable (VMBRIDGE_ALERTS_TO=a@example.com,b@example.com). Numbers in such text become numbers.
 */
function commaList<T extends z.ZodString | z.ZodNumber>(item: T) {
  return z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    const parts = v.split(',').map((p) => p.trim()).filter((p) => p !== '');
    return item instanceof z.ZodNumber ? parts.map((p) => (/^[+-]?\d+(\.\d+)?$/.test(p) ? Number(p) : p)) : parts;
  }, z.array(item));
}

const folderName = z.string().min(1).max(200).refine((s) => !/[\r\n\0]/.test(s), 'no CR, LF or NUL');

export const settingsSchema = z.strictObject({
  spool: z.strictObject({
    /** Asterisk's astspooldir; voicemail lives in <dir>/voicemail. */
    dir: z.string().min(1).default('/var/spool/asterisk'),
    /** voicemail.conf: the list of mailboxes and their IMAP users. */
    voicemailConf: z.string().min(1).default('/etc/asterisk/voicemail.conf'),
    /** asterisk.conf, for lockmode; optional. */
    asteriskConf: z.string().min(1).optional(),
    /** Watch the spool for new files (inotify). */
    watch: z.boolean().default(true),
    /** Safety-net sweep over every mailbox, in seconds (0 turns it off). */
    sweepSeconds: z.number().int().min(0).max(86_400).default(300),
  }).default({ dir: '/var/spool/asterisk', voicemailConf: '/etc/asterisk/voicemail.conf', watch: true, sweepSeconds: 300 }),

  redis: z.strictObject({
    url: z.string().min(1).default('redis://127.0.0.1:6379'),
    /** Key and queue prefix, so several deployments can share one Redis. */
    prefix: z.string().min(1).max(64).regex(/^[A-Za-z0-9_.:-]+$/).default('vmbridge'),
  }).default({ url: 'redis://127.0.0.1:6379', prefix: 'vmbridge' }),

  imap: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65_535).default(993),
    /** true: implicit TLS (port 993). false: plain, upgraded with STARTTLS when the server offers it. */
    secure: z.boolean().default(true),
    /** Refuse to log in over an unencrypted connection (set false only for loopback test servers). */
    requireTls: z.boolean().default(true),
    tls: z.strictObject({
      /** Verify the server certificate. Turning this off is logged as a warning at start. */
      rejectUnauthorized: z.boolean().default(true),
      /** Extra CA bundle (PEM file). */
      caFile: z.string().min(1).optional(),
      servername: z.string().min(1).optional(),
    }).default({ rejectUnauthorized: true }),
    login: z.strictObject({
      /** per-user: each mailbox logs in as its own IMAP user. master: a master user logs in on its behalf. */
      mode: z.enum(['per-user', 'master']).default('per-user'),
      /**
       * IMAP user name of a mailbox when voicemail.conf has no imapuser= for it.
       * Placeholders: {mailbox} {context} {email}.
       */
      userTemplate: z.string().min(1).default('{email}'),
      masterUser: z.string().min(1).optional(),
      masterPassword: z.string().min(1).optional(),
      masterPasswordFile: z.string().min(1).optional(),
      /** How the master login is written: Dovecot's `user*master`. */
      masterSeparator: z.string().min(1).max(4).default('*'),
      /** YAML file mapping IMAP user to password, for users without imappassword= in voicemail.conf. */
      passwordsFile: z.string().min(1).optional(),
    }).default({ mode: 'per-user', userTemplate: '{email}', masterSeparator: '*' }),
    folders: z.strictObject({
      /** Folder that holds new (unseen), urgent (unseen + \Flagged) and old (\Seen) voicemail. */
      inbox: folderName.default('INBOX'),
      /** Parent for Work/Family/Friends, e.g. "Voicemail"; empty for top level. */
      parent: z.string().max(200).default(''),
      work: folderName.default('Work'),
      family: folderName.default('Family'),
      friends: folderName.default('Friends'),
      /**
       * Where deleted voicemail emails go when they are moved rather than expunged (see deleteMode).
       * Unset: the folder the server flags \Trash (SPECIAL-USE), else "Trash" (created if missing).
       */
      trash: folderName.optional(),
    }).default({ inbox: 'INBOX', parent: '', work: 'Work', family: 'Family', friends: 'Friends' }),
    /**
     * How a voicemail email deleted on the phone leaves IMAP. Never with a bare EXPUNGE, which would
     * also remove every message the user has flagged \Deleted in that folder.
     *  - auto: UID EXPUNGE of exactly that message (UIDPLUS); without UIDPLUS a MOVE to the trash
     *    folder (MOVE); without either, the email is left flagged \Deleted.
     *  - expunge: UID EXPUNGE (UIDPLUS), otherwise left flagged \Deleted; never moved to the trash.
     *  - trash: moved to the trash folder (MOVE, or COPY + UID EXPUNGE), otherwise as auto.
     */
    deleteMode: z.enum(['auto', 'expunge', 'trash']).default('auto'),
    /** Open IMAP connections at most, over all accounts. */
    maxConnections: z.number().int().min(1).max(10_000).default(50),
    /** Seconds of no use after which an account's connection is logged out. */
    idleCloseSeconds: z.number().int().min(1).max(86_400).default(300),
  }),

  email: z.strictObject({
    /** From: of voicemail emails. */
    from: z.string().min(3).default('"Voicemail" <voicemail@localhost>'),
    /** Domain used in the deterministic Message-ID. */
    messageIdDomain: z.string().min(1).regex(/^[A-Za-z0-9.-]+$/).default('vmbridge.invalid'),
    /** X-Asterisk-VM-Server-Name (Asterisk's fromstring). */
    serverName: z.string().default('vmbridge'),
    /** Time zone for dates in the email when the mailbox has no tz= (IANA name). */
    timezone: z.string().min(1).refine(isTimeZone, 'not a time zone name known to this system (e.g. Europe/Berlin, UTC)').default('UTC'),
  }).default({ from: '"Voicemail" <voicemail@localhost>', messageIdDomain: 'vmbridge.invalid', serverName: 'vmbridge', timezone: 'UTC' }),

  sync: z.strictObject({
    /** Reconciles run at once in one process (different mailboxes). */
    concurrency: z.number().int().min(1).max(256).default(4),
    /** A plan deleting more than this share of a mailbox stops and reports instead. */
    maxDeleteShare: z.number().min(0).max(1).default(0.5),
    /** ...unless it deletes fewer than this many messages. */
    maxDeleteFloor: z.number().int().min(0).default(5),
  }).default({ concurrency: 4, maxDeleteShare: 0.5, maxDeleteFloor: 5 }),

  http: z.strictObject({
    /** Health/readiness/metrics listener; port 0 turns it off. */
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(0),
  }).default({ host: '127.0.0.1', port: 0 }),

  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).default({ level: 'info' }),

  /**
   * Quota and mailbox-size watch, and the mails it sends to administrators. Without `to` (and
   * `smtp`) nothing is mailed: crossings are still logged, and a full mailbox is still retried.
   */
  alerts: z.strictObject({
    /** Administrators' addresses (a list; in the environment, comma-separated). Empty: no mail. */
    to: commaList(z.string().min(3).max(320).refine((s) => !/[\r\n\0]/.test(s), 'no CR, LF or NUL')).default([]),
    /** From: of alert mails. */
    from: z.string().min(3).max(320).refine((s) => !/[\r\n\0]/.test(s), 'no CR, LF or NUL').default('"vmbridge" <vmbridge@localhost>'),
    /** The mail server alerts are submitted to (needed when `to` is set). */
    smtp: z.strictObject({
      host: z.string().min(1),
      /** 587 (submission, STARTTLS) by default; 465 with secure: true; 25 for a local relay. */
      port: z.number().int().min(1).max(65_535).default(587),
      /** true: TLS from the first byte (port 465). false: plain, upgraded with STARTTLS when offered. */
      secure: z.boolean().default(false),
      /** Refuse to send unless the connection is encrypted (STARTTLS is then mandatory). */
      requireTLS: z.boolean().default(true),
      auth: z.strictObject({
        user: z.string().min(1),
        pass: z.string().min(1).optional(),
        /** A file holding only the password (one trailing newline ignored). */
        passFile: z.string().min(1).optional(),
      }).optional(),
      tls: z.strictObject({
        /** Verify the SMTP server's certificate. */
        rejectUnauthorized: z.boolean().default(true),
      }).default({ rejectUnauthorized: true }),
    }).optional(),
    /** Percentages of a quota (each resource: STORAGE, MESSAGE) that send one mail when reached. */
    quotaThresholds: commaList(z.number().int().min(1).max(100)).default([80, 95, 100]),
    /** A threshold is re-armed once usage falls this many percentage points below it. */
    rearmMarginPercent: z.number().min(0).max(50).default(5),
    /** Read every account's quota this often, in seconds (0: only after APPENDs). */
    quotaCheckSeconds: z.number().int().min(0).max(86_400).default(900),
    /** Alert mails at most, in any 60 minutes, over all mailboxes; the rest are summarised. */
    maxMailsPerHour: z.number().int().min(0).max(10_000).default(60),
    /** Warn when a spool folder callers write to is this many messages short of maxmsg. */
    maxmsgMargin: z.number().int().min(0).max(9_999).default(2),
    /** First retry of a mailbox whose server refused an APPEND for quota, in seconds; doubles. */
    quotaRetrySeconds: z.number().int().min(1).max(86_400).default(60),
    /** Longest wait between those retries, in seconds. */
    quotaRetryMaxSeconds: z.number().int().min(1).max(86_400).default(1_800),
  }).default({
    to: [],
    from: '"vmbridge" <vmbridge@localhost>',
    quotaThresholds: [80, 95, 100],
    rearmMarginPercent: 5,
    quotaCheckSeconds: 900,
    maxMailsPerHour: 60,
    maxmsgMargin: 2,
    quotaRetrySeconds: 60,
    quotaRetryMaxSeconds: 1_800,
  }),
});

export type Settings = z.infer<typeof settingsSchema>;

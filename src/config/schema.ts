/**
 * The settings vmbridge reads from its YAML file (and environment overrides).
 * Every key here is documented in config/vmbridge.example.yaml; keep the two in step.
 */
import { z } from 'zod';
import { AUDIO_MODES } from '../audio/formats.js';
import { clusterUrlProblem, hashTagOf, PREFIX_ACCEPTED, PREFIX_PATTERN, taggedPrefix } from './redis-prefix.js';
import { isTimeZone } from './time-zone.js';
import { DEFAULT_NOTIFY_SOCKET } from '../notify/protocol.js';

/** The health, readiness and metrics listener's port (on http.host, 127.0.0.1 by default). */
export const DEFAULT_HTTP_PORT = 9465;
/** Where Asterisk keeps voicemail.conf on Debian and in its own install. */
export const DEFAULT_VOICEMAIL_CONF = '/etc/asterisk/voicemail.conf';

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

/** JSON text from the environment, or the text itself (validation then says what is wrong). */
function parseJsonOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const folderName = z.string().min(1).max(200).refine((s) => !/[\r\n\0]/.test(s), 'no CR, LF or NUL');

/** Text that goes into a protocol line (AMI header, SIP header): no CR, LF, NUL or other control. */
const lineText = (max: number) => z.string().min(1).max(max).refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'no line breaks or control characters');
/** A host name or an IP literal (IPv6 with or without brackets). */
const hostName = z.string().min(1).max(253).regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.:-]+)$/, 'a host name or an IP address');

/**
 * How one server's TLS certificate is checked (src/tls.ts). Verification is on by default; a
 * private CA needs caFile, not rejectUnauthorized: false.
 */
const tlsSettings = z.strictObject({
  /** Verify the certificate chain and host name. Turning this off is warned about at start. */
  rejectUnauthorized: z.boolean().default(true),
  /** PEM file of the CA(s) to trust for this server instead of the system's (a private CA). */
  caFile: z.string().min(1).optional(),
  /** The name the certificate must hold, when it is not the host connected to. */
  servername: z.string().min(1).optional(),
}).default({ rejectUnauthorized: true });

/** Fields every MWI target has. */
const mwiTargetBase = {
  /**
   * Names the target in logs, metrics and its queue (`mwi-<name>`): letters, digits, `_` and `-`,
   * 1 to 32 characters, unique among the targets.
   */
  name: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and - only, 1 to 32 characters'),
  /**
   * The voicemail servers whose mailboxes this target shows (`main` for the top-level spool and
   * asterisk sections, else a servers[].name). Unset: every server. With several servers an
   * ami-refresh target must name its own: VoicemailRefresh asks that Asterisk to count a mailbox
   * of its own spool (docs/stores.md).
   */
  servers: z.array(z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'a server name')).min(1).optional(),
};

/** An Asterisk Manager Interface account (manager.conf). */
const amiTargetFields = {
  ...mwiTargetBase,
  host: hostName,
  port: z.number().int().min(1).max(65_535).default(5038),
  username: lineText(128),
  /** The manager.conf secret, inline; prefer secretFile. Exactly one of the two. */
  secret: lineText(256).optional(),
  /** A file holding only the secret (one trailing newline ignored). */
  secretFile: z.string().min(1).optional(),
  /** Every action gives up after this many seconds (the job is then retried). */
  timeoutSeconds: z.number().int().min(1).max(120).default(5),
  /** AMI over TLS (manager.conf tlsenable=yes, usually port 5039). */
  secure: z.boolean().default(false),
  tls: tlsSettings,
};

/**
 * One place message-waiting counts are published to after each reconcile. Every mailbox goes to
 * every target; each target has its own queue, so one that is down delays no other.
 */
export const mwiTargetSchema = z.discriminatedUnion('kind', [
  /** The Asterisk that owns the spool (app_voicemail): AMI VoicemailRefresh for the mailbox. */
  z.strictObject({ kind: z.literal('ami-refresh'), ...amiTargetFields }),
  /** An Asterisk running res_mwi_external_ami instead of app_voicemail: AMI MWIUpdate. */
  z.strictObject({ kind: z.literal('ami-mwiupdate'), ...amiTargetFields }),
  /**
   * An Asterisk (20.23, 22.13, 23.7, 24.1 or later, res_manager_devicestate) that phones register
   * to, next to its own app_voicemail: AMI MailboxStateChange, published as a remote mailbox.
   */
  z.strictObject({
    kind: z.literal('ami-mailboxstate'),
    ...amiTargetFields,
    /**
     * The entity ID the update claims to come from (`xx:xx:xx:xx:xx:xx`). It must differ from
     * the target Asterisk's own entityid (asterisk.conf), or it refuses the update.
     */
    entityId: z.string().regex(/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/, 'six hex pairs separated by colons, e.g. 02:00:00:00:00:01'),
  }),
  /** A SIP proxy or endpoint: one unsolicited NOTIFY (message-summary) over UDP, TCP or TLS. */
  z.strictObject({
    kind: z.literal('sip-notify'),
    ...mwiTargetBase,
    host: hostName,
    /** Default 5060, or 5061 with transport tls (RFC 3261 §19.1.2). */
    port: z.number().int().min(1).max(65_535).optional(),
    /** udp, tcp, or tls (TLS over TCP; needed for a sips: toUri). docs/sip-notify.md. */
    transport: z.enum(['udp', 'tcp', 'tls']).default('udp'),
    /** With transport tls: how the target's certificate is checked (verified against host by default). */
    tls: tlsSettings,
    /** Request-URI and To: of each NOTIFY. Placeholders {mailbox} and {context}. */
    toUri: lineText(256).refine((s) => s.includes('{mailbox}'), 'must contain {mailbox}'),
    /** From: of each NOTIFY, e.g. sip:vmbridge@pbx.example.com. */
    fromUri: lineText(256),
    /** Digest user name; default: the user part of fromUri. */
    username: lineText(128).optional(),
    /** Digest password, inline; prefer passwordFile. At most one of the two. */
    password: lineText(256).optional(),
    /** A file holding only the Digest password (one trailing newline ignored). */
    passwordFile: z.string().min(1).optional(),
  }).transform((t) => ({ ...t, port: t.port ?? (t.transport === 'tls' ? 5061 : 5060) })),
  /**
   * Message lamps of a PBX on an SMDI serial link (docs/mwi.md): the port, its line settings and
   * the station of each mailbox come from Asterisk's smdi.conf.
   */
  z.strictObject({
    kind: z.literal('smdi'),
    ...mwiTargetBase,
    /** Asterisk's smdi.conf: [interfaces] gives the port and line, [mailboxes] the stations. */
    smdiConf: z.string().min(1).refine((s) => s.startsWith('/'), 'an absolute path'),
    /** Which smdiport of smdi.conf this target drives; needed only when the file lists several. */
    port: z.string().min(1).refine((s) => s.startsWith('/'), 'an absolute device path').optional(),
    /** Longest wait between attempts to reopen a lost device (the first is half a second). */
    reopenMaxSeconds: z.number().int().min(1).max(600).default(30),
    /** A write the device does not take in this many seconds counts as a lost device. */
    timeoutSeconds: z.number().int().min(1).max(120).default(5),
  }),
]);
export type MwiTarget = z.infer<typeof mwiTargetSchema>;
export type AmiMwiTarget = Extract<MwiTarget, { kind: 'ami-refresh' | 'ami-mwiupdate' | 'ami-mailboxstate' }>;
export type SipMwiTarget = Extract<MwiTarget, { kind: 'sip-notify' }>;
export type SmdiMwiTarget = Extract<MwiTarget, { kind: 'smdi' }>;

/**
 * One speech-to-text model of the transcription stage (docs/transcription.md). vmbridge never
 * downloads a model: every path here is checked at start, and a missing one turns the stage off.
 */
export const transcriptionModelSchema = z.discriminatedUnion('engine', [
  /** CMU PocketSphinx (Debian: pocketsphinx, pocketsphinx-en-us), run as pocketsphinx_continuous. */
  z.strictObject({
    engine: z.literal('pocketsphinx'),
    program: z.string().min(1).default('pocketsphinx_continuous'),
    /** The acoustic model folder (-hmm), the language model (-lm) and the dictionary (-dict). */
    hmm: z.string().min(1),
    lm: z.string().min(1),
    dict: z.string().min(1),
    /** What emails and logs call the model; default: the acoustic model folder's name. */
    model: lineText(100).optional(),
  }),
  /**
   * Any program (no shell): {wav} in an argument becomes the prepared 16 kHz WAV, {language} the
   * language. It writes {"text": ...} as JSON, or plain text, on stdout.
   */
  z.strictObject({
    engine: z.literal('command'),
    command: z.array(z.string().min(1)).min(1),
    /** What emails and logs call the model. */
    model: lineText(100).default('command'),
    /** Files the program needs (its model), checked at start like pocketsphinx's. */
    files: z.array(z.string().min(1)).default([]),
  }),
  /**
   * sherpa-onnx through the npm package sherpa-onnx-node (an optional dependency), with one model's
   * files in modelDir (docs/transcription.md says where models come from).
   */
  z.strictObject({
    engine: z.literal('sherpa-onnx'),
    modelDir: z.string().min(1),
    /** The model's family, which decides the files it needs. */
    kind: z.enum(['whisper', 'transducer', 'paraformer', 'sense-voice', 'moonshine']).default('whisper'),
    /** CPU threads of one decode. */
    threads: z.number().int().min(1).max(16).default(1),
    /** What emails and logs call the model; default: the model folder's name. */
    model: lineText(100).optional(),
  }),
]);
export type TranscriptionModel = z.infer<typeof transcriptionModelSchema>;

/** A voicemail.conf language= value: en, en_US, de-DE, ... */
const languageKey = z.string().regex(/^[A-Za-z]{2,8}([_-][A-Za-z0-9]{1,8})*$/, 'a language such as en, en_US or de');

/** Where Asterisk keeps voicemail: its spool (and, with odbcstorage=, its database). */
const spoolSchema = z.strictObject({
  /** Asterisk's astspooldir; voicemail lives in <dir>/voicemail. */
  dir: z.string().min(1).default('/var/spool/asterisk'),
  /** voicemail.conf: the list of mailboxes and their IMAP users. */
  voicemailConf: z.string().min(1).default(DEFAULT_VOICEMAIL_CONF),
  /** asterisk.conf, for lockmode and (vmbridge run as root) runuser/rungroup; optional. */
  asteriskConf: z.string().min(1).optional(),
  /**
   * How Asterisk locks a spool folder (asterisk.conf [options] lockmode). Unset: read from
   * asteriskConf when that is set, else lockfile (Asterisk's default). Both sides must agree.
   */
  lockmode: z.enum(['lockfile', 'flock']).optional(),
  /** Watch the spool for new files (inotify). */
  watch: z.boolean().default(true),
  /** Safety-net sweep over every mailbox, in seconds (0 turns it off). */
  sweepSeconds: z.number().int().min(0).max(86_400).default(300),
  /**
   * The database of Asterisk's ODBC voicemail storage, used when voicemail.conf sets
   * odbcstorage= (docs/stores.md). The table name and odbc_audio_on_disk come from voicemail.conf.
   */
  odbc: z.strictObject({
    /** postgres://user:password@host:port/db or mysql://...; prefer urlFile (it holds the password). */
    url: z.string().min(1).optional(),
    /** A file holding the URL (one line). At most one of url and urlFile. */
    urlFile: z.string().min(1).optional(),
    /**
     * Without url and urlFile, the URL is worked out from Asterisk's own files: res_odbc.conf
     * (default: beside voicemail.conf) for the class odbcstorage= names, and unixODBC's odbc.ini
     * (default /etc/odbc.ini) for its DSN (docs/stores.md).
     */
    resOdbcConf: z.string().min(1).optional(),
    odbcIni: z.string().min(1).optional(),
    /** The astspooldir the Asterisk server writes into the table's dir column; default spool.dir. */
    asteriskSpoolDir: z.string().min(1).optional(),
    /** How often the table is looked at for changes where no notice says so (seconds; 0: only the sweep). */
    pollSeconds: z.number().int().min(0).max(3_600).default(5),
  }).optional(),
});

/** The Asterisk that owns a spool. */
const asteriskSchema = z.strictObject({
  /**
   * Its Manager Interface (manager.conf). Optional; with it, spool changes go through Asterisk
   * (VoicemailMove/VoicemailRemove), wait while a caller is in VoiceMailMain for the mailbox
   * (CoreShowChannels), and MessageWaiting events trigger a reconcile.
   */
  ami: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65_535).default(5038),
    username: z.string().min(1).refine((s) => !/[\r\n\0]/.test(s), 'no CR, LF or NUL'),
    secret: z.string().min(1).optional(),
    /** A file holding only the secret (one trailing newline ignored). */
    secretFile: z.string().min(1).optional(),
    /** Use VoicemailMove/VoicemailRemove (Asterisk 18.20, 20.5 and later); false: change files under the lock. */
    useVoicemailActions: z.boolean().default(true),
    /** AMI over TLS (manager.conf tlsenable=yes, usually port 5039). */
    secure: z.boolean().default(false),
    tls: tlsSettings,
  }).optional(),
});

/** One more voicemail server: its own store, voicemail.conf and Asterisk. */
const serverSchema = z.strictObject({
  /** Part of its mailboxes' names, Redis keys and Message-IDs: never change it once in use. */
  name: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ and - only, 1 to 32 characters').refine((n) => n !== 'main', 'main names the top-level spool and asterisk sections'),
  /** As the top-level spool section; dir and voicemailConf are required, sweepSeconds is the top level's. */
  spool: spoolSchema.omit({ sweepSeconds: true }).extend({ dir: z.string().min(1), voicemailConf: z.string().min(1) }),
  asterisk: asteriskSchema.default({}),
});

export const settingsSchema = z.strictObject({
  spool: spoolSchema.default({ dir: '/var/spool/asterisk', voicemailConf: DEFAULT_VOICEMAIL_CONF, watch: true, sweepSeconds: 300 }),

  redis: z.strictObject({
    /** redis://host:port/db, or rediss://host:port/db for TLS (checked as tls says). */
    url: z.string().min(1).default('redis://127.0.0.1:6379'),
    /**
     * Key and queue prefix, so several deployments can share one Redis. With cluster it must be a
     * hash tag, e.g. {vmbridge} (./redis-prefix.ts).
     */
    prefix: z.string().min(1).max(64).regex(PREFIX_PATTERN, PREFIX_ACCEPTED).default('vmbridge'),
    /** url names one node of a Redis Cluster; the others are found from it. */
    cluster: z.boolean().default(false),
    /** ACL user (AUTH <username> <password>); default: the URL's, else Redis's default user. */
    username: z.string().min(1).optional(),
    /** The password, inline; prefer passwordFile. Overrides one in the URL. */
    password: z.string().min(1).optional(),
    /** A file holding only the password (one trailing newline ignored). */
    passwordFile: z.string().min(1).optional(),
    /** Used with a rediss:// URL. */
    tls: tlsSettings,
  }).superRefine((redis, ctx) => {
    if (!redis.cluster) return;
    if (hashTagOf(redis.prefix) === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['prefix'],
        message: `with redis.cluster true it must hold a hash tag, so that all of the installation's keys and queues land in one cluster slot (BullMQ's scripts and vmbridge's need it); write it in braces, quoted in YAML: prefix: '${taggedPrefix(redis.prefix)}'`,
      });
    }
    const urlProblem = clusterUrlProblem(redis.url);
    if (urlProblem !== undefined) ctx.addIssue({ code: 'custom', path: ['url'], message: urlProblem });
  }).default({ url: 'redis://127.0.0.1:6379', prefix: 'vmbridge', cluster: false, tls: { rejectUnauthorized: true } }),

  imap: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65_535).default(993),
    /** true: implicit TLS (port 993). false: plain, upgraded with STARTTLS when the server offers it. */
    secure: z.boolean().default(true),
    /** Refuse to log in over an unencrypted connection (set false only for loopback test servers). */
    requireTls: z.boolean().default(true),
    tls: tlsSettings,
    login: z.strictObject({
      /**
       * per-user: each mailbox logs in as its own IMAP user. master: a master user logs in on its behalf.
       * oauth2: each mailbox logs in as its own user with a bearer token (XOAUTH2/OAUTHBEARER).
       */
      mode: z.enum(['per-user', 'master', 'oauth2']).default('per-user'),
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
      /**
       * How the master user acts as a mailbox's user. separator: LOGIN as `<user><masterSeparator>
       * <masterUser>` (Dovecot master users). authzid: SASL PLAIN as masterUser with the mailbox's
       * user as the authorization identity (RFC 4616), e.g. a Cyrus admin listed in `admins`.
       */
      masterStyle: z.enum(['separator', 'authzid']).default('separator'),
      /** YAML file mapping IMAP user to password, for users without imappassword= in voicemail.conf. */
      passwordsFile: z.string().min(1).optional(),
      /**
       * (oauth2) A file holding only the bearer token, read at every (re)connect so a rotated token
       * is picked up. `{user}` in the path becomes the IMAP user, for one file per user.
       */
      tokenFile: z.string().min(1).optional(),
      /**
       * (oauth2) A program and its arguments (no shell) that prints the bearer token on stdout; run
       * at every (re)connect, `{user}` in an argument becomes the IMAP user. 10 s at most.
       */
      tokenCommand: z.array(z.string().min(1)).min(1).optional(),
    }).default({ mode: 'per-user', userTemplate: '{email}', masterSeparator: '*', masterStyle: 'separator' }),
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
    /**
     * The per-server bound: command connections at most to the IMAP server (there is one server
     * per settings file), over all accounts. IDLE connections come on top (idle.maxAccounts).
     * Beyond it, a request waits for a connection to close.
     */
    maxConnections: z.number().int().min(1).max(10_000).default(50),
    /**
     * The per-user bound: connections at most to one IMAP user, command and IDLE together (the
     * server's own cap is per user and client address, e.g. Dovecot's mail_max_userip_connections,
     * 10 by default). An IDLE connection never takes the last one, so with IDLE on it must be at
     * least 2. Beyond it, a request waits for a connection to close.
     */
    maxConnectionsPerUser: z.number().int().min(1).max(1_000).default(2),
    /** Seconds of no use after which an account's connection is logged out. */
    idleCloseSeconds: z.number().int().min(1).max(86_400).default(300),
    idle: z.strictObject({
      /**
       * Accounts watched with IMAP IDLE on the inbox folder (one extra connection each, besides
       * maxConnections), so mail-client changes arrive within a second or two; the others rely on
       * the sweep. 0 turns IDLE off.
       */
      maxAccounts: z.number().int().min(0).max(10_000).default(100),
      /**
       * With more accounts than maxAccounts, how often the watched ones are chosen again by need:
       * accounts with unread voicemail first, then those most recently active.
       */
      rechooseSeconds: z.number().int().min(1).max(86_400).default(60),
      /**
       * The margin of that choice, so that busy accounts do not pass a connection back and forth
       * (a logout and a login each time, and a moment in which neither is watched): a watched
       * account keeps its connection unless an unwatched one has unread voicemail where it has
       * none, or, both alike in that, was last active more than this many seconds later. 0 moves
       * it for any newer activity.
       */
      keepSeconds: z.number().int().min(0).max(86_400).default(300),
      /**
       * Where the server has IMAP NOTIFY (RFC 5465; Dovecot does), each IDLE connection also
       * hears Work, Family and Friends, not only the inbox folder. false: only the inbox folder.
       */
      notify: z.boolean().default(true),
    }).default({ maxAccounts: 100, rechooseSeconds: 60, keepSeconds: 300, notify: true }),
    /**
     * Dovecot's doveadm HTTP API (doveadm_api_key, and an inet_listener http in service doveadm):
     * with it a sweep asks the status of every user's folders in one call, and a mailbox whose
     * folders and spool are as it was last found quiet is passed over without an IMAP login
     * (docs/sync.md, "The sweep beside Dovecot"). Optional.
     */
    doveadm: z.strictObject({
      /** http(s)://host:port/doveadm/v1 */
      url: z.string().regex(/^https?:\/\/[^\s/]+\/\S*$/, 'an http:// or https:// URL, e.g. http://127.0.0.1:8080/doveadm/v1'),
      /** The doveadm_api_key, inline; prefer apiKeyFile. Exactly one of the two. */
      apiKey: z.string().min(1).optional(),
      /** A file holding only the API key (one trailing newline ignored). */
      apiKeyFile: z.string().min(1).optional(),
      /** The one call for every user gives up after this many seconds (the sweep then logs in as before). */
      timeoutSeconds: z.number().int().min(1).max(600).default(60),
      /** With an https:// URL: how Dovecot's certificate is checked. */
      tls: tlsSettings,
    }).optional(),
  }).superRefine((imap, ctx) => {
    // Only 1 is in range and too small (other values already have their own problem reported).
    if (imap.idle.maxAccounts > 0 && imap.maxConnectionsPerUser === 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxConnectionsPerUser'],
        message: 'must be at least 2 while IDLE is on (one command connection and one IDLE connection per user); set imap.idle.maxAccounts: 0 to turn IDLE off',
      });
    }
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
    /**
     * The audio the email carries (docs/attachments.md): mp3, wav, original (as Asterisk attaches
     * it), original+mp3. A mailbox's vmbridge_audio= in voicemail.conf (or [general]'s) overrides it.
     */
    audio: z.enum(AUDIO_MODES).default('mp3'),
    /**
     * Whose words an email has where voicemail.conf sets no emailsubject=/emailbody=/fromstring=:
     * vmbridge's (caller, number and length in the subject) or Asterisk's own defaults.
     */
    wording: z.enum(['vmbridge', 'asterisk']).default('vmbridge'),
    /** The program that makes MP3 and WAV (SoX), and how long one conversion may take. */
    audioTool: z.strictObject({
      command: z.string().min(1).default('sox'),
      timeoutSeconds: z.number().min(1).max(600).default(30),
    }).default({ command: 'sox', timeoutSeconds: 30 }),
  }).default({ from: '"Voicemail" <voicemail@localhost>', messageIdDomain: 'vmbridge.invalid', serverName: 'vmbridge', timezone: 'UTC', audio: 'mp3', wording: 'vmbridge', audioTool: { command: 'sox', timeoutSeconds: 30 } }),

  sync: z.strictObject({
    /** Reconciles run at once in one process (different mailboxes). */
    concurrency: z.number().int().min(1).max(256).default(4),
    /**
     * Reconciles of the start-up pass, the sweep and reloads run at once, beside the event lane's
     * `concurrency`. Unset: half of `concurrency` (at least 1), so a pass over every mailbox
     * leaves room for events (docs/sync.md, "Two lanes").
     */
    backgroundConcurrency: z.number().int().min(1).max(256).optional(),
    /**
     * The same while no event has been reconciled for 5 s (a first start, a quiet night's sweep):
     * the pass takes the room nobody else needs and gives it back when an event arrives. Unset:
     * twice `concurrency`, at most imap.maxConnections less `concurrency`; never below the other.
     */
    backgroundCalmConcurrency: z.number().int().min(1).max(256).optional(),
    /** A plan deleting more than this share of a mailbox stops and reports instead. */
    maxDeleteShare: z.number().min(0).max(1).default(0.5),
    /** ...unless it deletes fewer than this many messages. */
    maxDeleteFloor: z.number().int().min(0).default(5),
    /** Carry mail-client changes (read, unread, flagged, filed, deleted) back to the spool. */
    imapToSpool: z.boolean().default(true),
    /**
     * Installation-wide: more than `max` deletions (voicemails and emails, every mailbox, every
     * process) within `windowSeconds` opens the breaker, which holds every deletion until
     * `vmbridge sync --release-deletes`. max 0: off.
     */
    deleteBreaker: z.strictObject({
      max: z.number().int().min(0).default(200),
      windowSeconds: z.number().int().min(1).max(86_400).default(600),
    }).default({ max: 200, windowSeconds: 600 }),
    /**
     * SIGTERM/SIGINT: reconciles in progress may finish for this long; then the process exits as
     * after a crash (the next start clears its own spool locks and completes a half-done change).
     */
    stopTimeoutSeconds: z.number().int().min(1).max(3_600).default(20),
  }).default({ concurrency: 4, maxDeleteShare: 0.5, maxDeleteFloor: 5, imapToSpool: true, deleteBreaker: { max: 200, windowSeconds: 600 }, stopTimeoutSeconds: 20 }),

  /** The Asterisk that owns the spool. */
  asterisk: asteriskSchema.default({}),

  /**
   * More voicemail servers beside the main one (the spool and asterisk sections above): each its
   * own spool or ODBC table, voicemail.conf and AMI, its mailboxes named `<server>/<mailbox>@<context>`
   * (docs/stores.md). In the environment, JSON.
   */
  servers: z.preprocess(
    (v) => (typeof v === 'string' ? parseJsonOr(v) : v),
    z.array(serverSchema).max(32),
  ).default([]),

  http: z.strictObject({
    /** Health/readiness/metrics listener, on by default on loopback; port 0 turns it off. */
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(DEFAULT_HTTP_PORT),
    /**
     * `POST /dovecot-push` on the same listener: Dovecot's push_notification plugin tells vmbridge
     * at once that a user's mail changed (config/dovecot/vmbridge-push.lua, docs/push.md).
     */
    push: z.strictObject({
      enabled: z.boolean().default(false),
      /** Required as `Authorization: Bearer <token>`; needed when http.host is not loopback. */
      token: z.string().min(1).optional(),
      /** A file holding only the token (one trailing newline ignored). */
      tokenFile: z.string().min(1).optional(),
    }).default({ enabled: false }),
    /**
     * The status page (`/status`) and the queue view (`/queues`, Bull Board) on the same listener,
     * behind HTTP Basic authentication (or `Authorization: Bearer <password>` for scripts):
     * docs/http.md. Off until a password is set.
     */
    status: z.strictObject({
      enabled: z.boolean().default(false),
      username: z.string().min(1).max(64).refine((s) => !/[:\s\0]/.test(s), 'no colon, whitespace or NUL').default('admin'),
      password: z.string().min(1).optional(),
      /** A file holding only the password (one trailing newline ignored). */
      passwordFile: z.string().min(1).optional(),
      /** false lets the queue view retry, promote and remove jobs; the status page itself only reads. */
      readOnly: z.boolean().default(true),
      /** How often an open status page asks for fresh figures. */
      refreshSeconds: z.number().int().min(1).max(3_600).default(10),
    }).default({ enabled: false, username: 'admin', readOnly: true, refreshSeconds: 10 }),
  }).default({ host: '127.0.0.1', port: DEFAULT_HTTP_PORT, push: { enabled: false }, status: { enabled: false, username: 'admin', readOnly: true, refreshSeconds: 10 } }),

  /** `vmbridge notify` (voicemail.conf externnotify) hands mailboxes to the service here: docs/notify.md. */
  notify: z.strictObject({
    /** Listen on notify.socket; false leaves externnotify to the spool watcher and the sweep. */
    listen: z.boolean().default(true),
    /**
     * The Unix socket (mode 0660, the service's group): Asterisk's user must be in that group.
     * `vmbridge notify` does not read this file: give it the same path with VMBRIDGE_NOTIFY_SOCKET
     * or --socket when it is not the default.
     */
    socket: z.string().min(1)
      .refine((s) => s.startsWith('/'), 'an absolute path')
      // sun_path holds 108 bytes on Linux, the terminating NUL included.
      .refine((s) => Buffer.byteLength(s) <= 107, 'at most 107 bytes (the limit of a Unix socket path)')
      .default(DEFAULT_NOTIFY_SOCKET),
  }).default({ listen: true, socket: DEFAULT_NOTIFY_SOCKET }),

  /** Message-waiting (MWI) publishing: see docs/mwi.md. */
  mwi: z.strictObject({
    /**
     * Where counts go after each reconcile (a list; in the environment, JSON). Empty: MWI is not
     * published by vmbridge.
     */
    targets: z.preprocess(
      (v) => (typeof v === 'string' ? parseJsonOr(v) : v),
      z.array(mwiTargetSchema).max(32).refine((list) => new Set(list.map((t) => t.name)).size === list.length, 'target names must be unique'),
    ).default([]),
    /** First retry of a failed publish, in seconds; doubles per attempt... */
    retrySeconds: z.number().int().min(1).max(3_600).default(1),
    /** ...up to this many seconds between attempts. */
    retryMaxSeconds: z.number().int().min(1).max(3_600).default(30),
    /** Mailboxes published at once per target. */
    concurrency: z.number().int().min(1).max(64).default(4),
  }).default({ targets: [], retrySeconds: 1, retryMaxSeconds: 30, concurrency: 4 }),

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
      tls: tlsSettings,
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

  /**
   * Voicemail transcription in the email, offline (docs/transcription.md). Off unless enabled here
   * or by a mailbox's vmbridge_transcribe=yes in voicemail.conf, and only with a model configured.
   */
  transcription: z.strictObject({
    /** Every mailbox; a mailbox's (or [general]'s) vmbridge_transcribe=yes|no overrides it. */
    enabled: z.boolean().default(false),
    /** The language of a mailbox whose voicemail.conf sets no language= (Asterisk's default is en). */
    defaultLanguage: languageKey.default('en'),
    /**
     * The email waits for the transcript at most budgetSeconds + budgetPerAudioSecond x the
     * recording's length, never more than budgetMaxSeconds; then it goes without.
     */
    budgetSeconds: z.number().min(0).max(600).default(3),
    budgetPerAudioSecond: z.number().min(0).max(10).default(1),
    budgetMaxSeconds: z.number().min(1).max(3_600).default(120),
    /**
     * Engine processes at once: the transcription worker's concurrency. Unset: one for every four
     * cores, at least one (1 on a small host).
     */
    concurrency: z.number().int().min(1).max(64).optional(),
    /**
     * Longest run of one engine in the transcription worker, in seconds. The email waits only its
     * budget; a transcript that comes later replaces it, one that takes longer than this is given up.
     */
    maxSeconds: z.number().int().min(10).max(7_200).default(600),
    /** CPU priority of the engine process (nice -n); 0 runs it without nice. */
    nice: z.number().int().min(0).max(19).default(10),
    /** Longest transcript kept in the body, in characters (the header holds less). */
    maxChars: z.number().int().min(100).max(20_000).default(2_000),
    /** Language (as voicemail.conf language= writes it) to model. Empty: no transcription. */
    models: z.preprocess(
      (v) => (typeof v === 'string' ? parseJsonOr(v) : v),
      z.record(languageKey, transcriptionModelSchema),
    ).default({}),
  }).default({ enabled: false, defaultLanguage: 'en', budgetSeconds: 3, budgetPerAudioSecond: 1, budgetMaxSeconds: 120, maxSeconds: 600, nice: 10, maxChars: 2_000, models: {} }),
});

export type Settings = z.infer<typeof settingsSchema>;

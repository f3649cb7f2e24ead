/**
 * Every option of Asterisk's voicemail.conf (its sample file, configs/samples/voicemail.conf.sample,
 * and app_voicemail's load_config / apply_option), and what vmbridge does with it:
 *
 * - used: vmbridge reads it and acts on it;
 * - phone-side: Asterisk's own business (recording, menus, prompts, passwords); nothing for
 *   vmbridge to do, and nothing it changes;
 * - not supported: it would matter to vmbridge, and vmbridge does not do it (yet), with the reason
 *   and what to do instead.
 *
 * `vmbridge conf-check` prints one line per option a file sets; `run` and `doctor` report the
 * not-supported ones. docs/voicemail-conf.md has the same list in prose.
 */

export type OptionUse = 'used' | 'phone-side' | 'not supported' | 'unknown';

export interface OptionInfo {
  readonly use: OptionUse;
  readonly why: string;
}

const used = (why: string): OptionInfo => ({ use: 'used', why });
const phone = (why: string): OptionInfo => ({ use: 'phone-side', why });
const unsupported = (why: string): OptionInfo => ({ use: 'not supported', why });

const MENU = phone('how VoiceMail()/VoiceMailMain() behave for callers; the spool shows the result');
const RECORDING = phone('how Asterisk records a message; vmbridge reads what it recorded');
const PASSWORD = phone("the mailbox's phone password; vmbridge never needs it");
const ADSI = phone('ADSI phone display scripts');

const CATALOG: Readonly<Record<string, OptionInfo>> = {
  // What an email looks like (docs/email-templates.md, docs/attachments.md).
  format: used('the recorded formats: which audio files make a message, and the recording "original" attaches'),
  attach: used('no means emails without audio, still synced both ways'),
  attachfmt: used('the recording email.audio: original (and original+mp3) attaches'),
  serveremail: used('the From address'),
  fromstring: used('the From name, with ${VM_*} variables'),
  emailsubject: used('the Subject, with ${VM_*} variables'),
  emailbody: used('the body text, with ${VM_*} variables'),
  emaildateformat: used('the format of ${VM_DATE}'),
  locale: used('day and month names in ${VM_DATE}; the transcription language where language= is not set'),
  tz: used('the time zone of every date in the email ([zonemessages])'),
  pbxskip: used('no "[PBX]: " before Asterisk\'s default subject (email.wording: asterisk)'),
  charset: used('the text part is written in it and labelled so, as Asterisk labels it; a text it cannot hold, or an unknown charset, goes as UTF-8 with a warning; unset, UTF-8'),
  emailtitle: unsupported('an old name of emailsubject that Asterisk still reads; rename it to emailsubject'),
  volgain: used('the gain MP3 and WAV attachments get (SoX -v, as Asterisk applies it); a recording attached as it is (email.audio: original) keeps its own volume'),
  attachextrecs: unsupported('every message in the spool becomes an email, recordings added from outside (MixMonitor) too'),
  vmbridge_audio: used("vmbridge's own: mp3, wav, original or original+mp3 for this mailbox (Asterisk ignores it)"),
  vmbridge_transcribe: used("vmbridge's own: yes or no, a transcript in this mailbox's emails (docs/transcription.md; Asterisk ignores it)"),
  language: used("the prompts' language for Asterisk; for vmbridge, which transcription model the mailbox's voicemail gets"),

  // Which mailboxes there are, and their folders.
  aliasescontext: used('that section holds aliases, not mailboxes'),
  maxmsg: used('a move into a full folder waits, as Asterisk refuses it; the maxmsg alert'),
  backupdeleted: used('a voicemail deleted in the mail client is kept in Deleted/, as Asterisk keeps it'),
  maxdeletedmsg: used('an old name of backupdeleted'),
  externnotify: used('set it to `vmbridge notify` so a new voicemail is emailed at once'),
  pollmailboxes: phone('Asterisk polls the spool for MWI; vmbridge tells the owning Asterisk itself (VoicemailRefresh)'),
  pollfreq: phone('how often Asterisk polls when pollmailboxes=yes'),
  moveheard: phone('Asterisk moves heard messages to Old; vmbridge sees the move'),
  searchcontexts: phone('how callers find a mailbox without a context; vmbridge always names mailbox@context'),
  userscontext: unsupported('mailboxes from users.conf are not read; list them in voicemail.conf'),
  delete: unsupported('Asterisk deletes the message right after its own notification, often before vmbridge has emailed it; leave it off for mailboxes vmbridge serves'),
  deletevoicemail: unsupported('the same as delete'),
  mailcmd: phone('Asterisk still sends its own notification mail to mailboxes with an email address; set mailcmd=/bin/true if vmbridge alone should deliver'),
  sendvoicemail: MENU,

  // Storage.
  odbcstorage: used('voicemail is read from and changed in that ODBC connection\'s table; spool.odbc.urlFile names the database (docs/stores.md)'),
  odbctable: used('the table of the ODBC voicemail (default voicemessages)'),
  odbc_audio_on_disk: used('the audio of table rows marked AUDMAGIC is read from the spool folder, and moves, renumbers and goes with its rows (docs/stores.md)'),
  imapuser: used('the IMAP user of the mailbox'),
  imappassword: used('the IMAP password of the mailbox'),
  imapsecret: used('an old name of imappassword'),
  imapserver: used('imap.host, where vmbridge\'s settings do not set it; a mailbox\'s own value must agree (else it is not synced)'),
  imapport: used('imap.port with imapserver= (143 when unset, as Asterisk)'),
  imapflags: used('ssl, tls, notls, secure and novalidate-cert become imap.secure, imap.requireTls and imap.tls.rejectUnauthorized'),
  imapfolder: used('imap.folders.inbox, where vmbridge\'s settings do not set it'),
  imapparentfolder: used('imap.folders.parent, where vmbridge\'s settings do not set it'),
  imapgreetings: unsupported('greetings are not synced to IMAP; they stay in the spool'),
  greetingsfolder: unsupported('greetings are not synced to IMAP'),
  imapvmshareid: used('what the mailbox\'s emails carry in X-Asterisk-VM-Extension, as Asterisk writes it; emails of Asterisk\'s IMAP storage with it are adopted, by one mailbox only where several share it'),
  authuser: used('a master login (imap.login.mode master, SASL PLAIN with each imapuser as authorization identity)'),
  authpassword: used('the master login\'s password with authuser= (imap.login.masterPasswordFile is better: voicemail.conf is often world-readable)'),
  imapopentimeout: phone('IMAP_STORAGE timeouts; vmbridge has its own'),
  imapclosetimeout: phone('IMAP_STORAGE timeouts; vmbridge has its own'),
  imapreadtimeout: phone('IMAP_STORAGE timeouts; vmbridge has its own'),
  imapwritetimeout: phone('IMAP_STORAGE timeouts; vmbridge has its own'),
  imap_poll_logout: phone('IMAP_STORAGE polling'),
  expungeonhangup: phone('IMAP_STORAGE expunges; vmbridge only ever expunges its own emails by UID'),

  // Lamps over other paths.
  smdienable: phone("Asterisk's own SMDI lamps"),
  smdiport: phone("Asterisk's own SMDI lamps"),

  // Pager mail: Asterisk sends it itself.
  pagerfromstring: phone('the pager notification Asterisk sends itself'),
  pagersubject: phone('the pager notification Asterisk sends itself'),
  pagerbody: phone('the pager notification Asterisk sends itself'),
  pagerdateformat: phone('the pager notification Asterisk sends itself'),

  // Recording and menus.
  maxsecs: RECORDING, minsecs: RECORDING, maxmessage: RECORDING, minmessage: RECORDING, maxgreet: RECORDING,
  maxsilence: RECORDING, silencethreshold: RECORDING, skipms: MENU, maxlogins: MENU, review: MENU, leaveurgent: MENU,
  forward_urgent_auto: MENU, operator: MENU, envelope: MENU, saycid: MENU, cidinternalcontexts: MENU, sayduration: MENU,
  saydurationm: MENU, dialout: MENU, callback: MENU, exitcontext: MENU, nextaftercmd: MENU, messagewrap: MENU,
  forcename: MENU, forcegreetings: MENU, tempgreetwarn: MENU, directoryintro: MENU, usedirectory: MENU, hidefromdir: MENU,
  alias: MENU,
  adsifdn: ADSI, adsisec: ADSI, adsiver: ADSI,
  externpass: PASSWORD, externpassnotify: PASSWORD, externpasscheck: PASSWORD, passwordlocation: PASSWORD, minpassword: PASSWORD,
  tps_queue_high: phone("app_voicemail's task processor"),
  tps_queue_low: phone("app_voicemail's task processor"),
};

/** What vmbridge does with a voicemail.conf option (names compare without case, as in Asterisk). */
export function classifyOption(name: string): OptionInfo {
  const key = name.toLowerCase();
  if (Object.hasOwn(CATALOG, key)) return CATALOG[key]!;
  if (key.startsWith('vm-')) return phone('a prompt sound file of VoiceMailMain()');
  if (key.startsWith('listen-control-')) return phone('a playback key of VoiceMailMain()');
  return { use: 'unknown', why: 'not an option app_voicemail knows; Asterisk ignores it' };
}

/** Every option name the catalog knows (for the docs and their test). */
export function catalogNames(): string[] {
  return Object.keys(CATALOG).sort();
}

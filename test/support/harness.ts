/**
 * Everything an integration test needs: a private Dovecot (or Cyrus, startCyrusHarness) and Redis,
 * a spool directory, a voicemail.conf naming the test mailboxes, settings pointing at all of them, a
 * log that is kept for assertions, and independent mail-client sessions.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { settingsSchema, type Settings } from '../../src/config/schema.js';
import { createLogger, type Logger } from '../../src/log.js';
import { startService, type Service, type ServiceOptions } from '../../src/service.js';
import type { MailboxRef } from '../../src/spool/types.js';
import { startCyrus, type CyrusServer } from './cyrus.js';
import { startDovecot, type DovecotServer } from './dovecot.js';
import { MailClient, type SeenEmail } from './mail-client.js';
import { startRedis } from './redis.js';

export interface HarnessBox {
  readonly mailbox: string;
  readonly context?: string;
  readonly fullName?: string;
  readonly email?: string;
  /** Dovecot quota rule for this box's IMAP user, e.g. `*:messages=5` (see DovecotUser.quotaRule). */
  readonly quotaRule?: string;
  /** More `|`-separated voicemail.conf options for the mailbox line, e.g. `maxmsg=4`. */
  readonly options?: string;
}

/** The IMAP server under test, whichever it is. */
export interface TestImapServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  stop(): Promise<void>;
}

export interface HarnessCore {
  readonly dir: string;
  readonly spoolDir: string;
  readonly confPath: string;
  readonly imap: TestImapServer;
  readonly redisUrl: string;
  readonly settings: Settings;
  readonly logLines: string[];
  readonly log: Logger;
  /** The IMAP user and password of a mailbox (user = "u<mailbox>" in context default). */
  account(ref: MailboxRef): { user: string; pass: string };
  mail(ref: MailboxRef): Promise<MailClient>;
  /** The emails in one folder of a mailbox, looked at over a connection of its own. */
  emails(ref: MailboxRef, folder?: string): Promise<SeenEmail[]>;
  startService(opts?: ServiceOptions): Promise<Service>;
  writeConf(extraLines?: string): Promise<void>;
  stop(): Promise<void>;
}

export interface Harness extends HarnessCore {
  readonly dovecot: DovecotServer;
}

export interface CyrusHarness extends HarnessCore {
  readonly cyrus: CyrusServer;
}

export function userOf(ref: MailboxRef): string {
  return ref.context === 'default' ? `u${ref.mailbox}` : `u${ref.mailbox}-${ref.context}`;
}

export async function startHarness(opts: {
  boxes: readonly HarnessBox[];
  settings?: (base: Record<string, unknown>) => Record<string, unknown>;
  confExtra?: string;
  logLevel?: 'info' | 'debug' | 'warn';
  /** Post-login capabilities the Dovecot leaves out, e.g. ['UIDPLUS'] (see startDovecot). */
  omitCapabilities?: readonly string[];
  /** Dovecot POSTs its mail-store events here (config/dovecot/vmbridge-push.lua). */
  dovecotPush?: { url: string; token?: string };
  /** The doveadm HTTP API with this key (Harness.dovecot.doveadmUrl). */
  doveadmApiKey?: string;
}): Promise<Harness> {
  const refs = opts.boxes.map((b) => ({ ...b, context: b.context ?? 'default' }));
  const dovecot = await startDovecot({
    users: refs.map((b) => ({ user: userOf(b), pass: `pw-${userOf(b)}`, ...(b.quotaRule !== undefined ? { quotaRule: b.quotaRule } : {}) })),
    ...(opts.omitCapabilities ? { omitCapabilities: opts.omitCapabilities } : {}),
    ...(opts.dovecotPush ? { push: opts.dovecotPush } : {}),
    ...(opts.doveadmApiKey !== undefined ? { doveadmApiKey: opts.doveadmApiKey } : {}),
  });
  return { ...(await startHarnessOn(dovecot, opts)), dovecot };
}

/**
 * The same on a private Cyrus IMAP (test/support/cyrus.ts) in its default namespace: personal
 * folders under INBOX, delimiter ".". Its admin (cyrus.admin) may log in for any user with a SASL
 * authzid. Dovecot-only options (quota rules, omitted capabilities) are refused, not ignored.
 */
export async function startCyrusHarness(opts: {
  boxes: readonly HarnessBox[];
  settings?: (base: Record<string, unknown>) => Record<string, unknown>;
  confExtra?: string;
  logLevel?: 'info' | 'debug' | 'warn';
}): Promise<CyrusHarness> {
  const refs = opts.boxes.map((b) => ({ ...b, context: b.context ?? 'default' }));
  if (refs.some((b) => b.quotaRule !== undefined)) throw new Error('quotaRule is a Dovecot quota rule; the Cyrus harness has none');
  const cyrus = await startCyrus({ users: refs.map((b) => ({ user: userOf(b), pass: `pw-${userOf(b)}` })) });
  return { ...(await startHarnessOn(cyrus, opts)), cyrus };
}

async function startHarnessOn(imap: TestImapServer, opts: {
  boxes: readonly HarnessBox[];
  settings?: (base: Record<string, unknown>) => Record<string, unknown>;
  confExtra?: string;
  logLevel?: 'info' | 'debug' | 'warn';
}): Promise<HarnessCore> {
  const dir = await mkdtemp(join(tmpdir(), 'vmb-h-'));
  const spoolDir = join(dir, 'spool');
  await mkdir(join(spoolDir, 'voicemail'), { recursive: true });
  const confPath = join(dir, 'voicemail.conf');
  const refs = opts.boxes.map((b) => ({ ...b, context: b.context ?? 'default' }));
  const redis = await startRedis();

  const writeConf = async (extra = ''): Promise<void> => {
    const byContext = new Map<string, string[]>();
    for (const b of refs) {
      const lines = byContext.get(b.context) ?? [];
      const user = userOf(b);
      lines.push(`${b.mailbox} => 1234,${b.fullName ?? `Owner ${b.mailbox}`},${b.email ?? `${user}@example.invalid`},,imapuser=${user}|imappassword=pw-${user}|tz=utc${b.options ? `|${b.options}` : ''}`);
      byContext.set(b.context, lines);
    }
    const text = ['[general]', 'format=wav49|gsm|wav', '', '[zonemessages]', 'utc=UTC|\'vm-received\' q \'digits/at\' IMp', ''];
    for (const [ctx, lines] of byContext) text.push(`[${ctx}]`, ...lines, '');
    text.push(opts.confExtra ?? '', extra);
    await writeFile(confPath, text.join('\n'));
  };
  await writeConf();

  const base: Record<string, unknown> = {
    spool: { dir: spoolDir, voicemailConf: confPath, watch: true, sweepSeconds: 0 },
    redis: { url: redis.url, prefix: `t${process.pid}` },
    imap: { host: '127.0.0.1', port: imap.port, secure: false, requireTls: false },
    email: { from: '"Voicemail" <voicemail@example.invalid>', messageIdDomain: 'vmbridge.test', serverName: 'vmbridge-test', timezone: 'UTC' },
    sync: { concurrency: 4, maxDeleteShare: 0.5, maxDeleteFloor: 5 },
    log: { level: opts.logLevel ?? 'info' },
    // Off unless a test asks for it: the default port would be shared by every test at once.
    http: { port: 0 },
  };
  const settings = settingsSchema.parse(opts.settings ? opts.settings(base) : base);

  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logLines.push(line);
      cb();
    },
  });
  const log = createLogger(settings.log.level, { destination: sink });
  const services: Service[] = [];
  const clients: MailClient[] = [];

  return {
    dir,
    spoolDir,
    confPath,
    imap,
    redisUrl: redis.url,
    settings,
    logLines,
    log,
    account: (ref) => ({ user: userOf(ref), pass: `pw-${userOf(ref)}` }),
    async mail(ref) {
      const c = await MailClient.open(imap.port, userOf(ref), `pw-${userOf(ref)}`);
      clients.push(c);
      return c;
    },
    async emails(ref, folder = 'INBOX') {
      const c = await MailClient.open(imap.port, userOf(ref), `pw-${userOf(ref)}`);
      try {
        return await c.list([folder]);
      } finally {
        await c.close();
      }
    },
    async startService(serviceOpts) {
      const s = await startService(settings, log, serviceOpts);
      services.push(s);
      return s;
    },
    writeConf,
    async stop() {
      // VMB_TEST_LOG=1 shows what vmbridge logged during the test file.
      if (process.env.VMB_TEST_LOG) process.stderr.write(`${logLines.join('\n')}\n`);
      for (const c of clients) await c.close();
      for (const s of services) await s.close().catch(() => undefined);
      await redis.stop();
      await imap.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

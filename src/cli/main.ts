/**
 * The `vmbridge` command.
 */
import { parseArgs } from 'node:util';
import { startAudio } from '../audio/start.js';
import { startTranscription } from '../transcribe/start.js';
import { checkOptions, renderOptionReport } from '../config/conf-check.js';
import { loadSettings, type LoadedSettings } from '../config/load-settings.js';
import { ReloadableService } from '../service-reload.js';
import { readVoicemailConf } from '../config/voicemail-conf.js';
import type { Settings } from '../config/schema.js';
import { VmbridgeError } from '../errors.js';
import { accountKey } from '../imap/account.js';
import { ImapPool } from '../imap/pool.js';
import { createLogger, type Logger } from '../log.js';
import { acquireMailboxLock } from '../queue/mailbox-lock.js';
import { DeleteBreaker } from '../queue/delete-breaker.js';
import { lockKey } from '../queue/reconcile-queue.js';
import { loadDirectory, startService } from '../service.js';
import { mailboxKey } from '../spool/types.js';
import type { Op } from '../sync/plan.js';
import { reconcileMailbox } from '../sync/reconcile.js';
import { StateStore } from '../sync/state-store.js';
import { connectAmiOnce } from '../mwi/ami-session.js';
import { OneShotMwiPublisher, type OneShotResult } from '../mwi/one-shot.js';
import { MwiStore } from '../queue/mwi-queue.js';
import { openStore } from '../store/open.js';
import { ServerStores, type ServerStore } from '../store/server-stores.js';
import { voicemailServers } from '../config/servers.js';
import { createRedis } from '../queue/redis-connection.js';
import { DEFAULT_MAX_ACCOUNTS, doctorHelp, renderJson, renderText, runDoctor, summarize, type CheckResult } from './doctor.js';
import { runNotify } from './notify-cmd.js';
import { StatusLine } from './progress-line.js';
import { ProgressMeter, formatProgress } from '../progress.js';
import { appendedBy, logProgress } from '../progress-log.js';
import { MAIN_HELP, NOTIFY_HELP, VERSION } from './notify-help.js';

const HELP: Record<string, string> = {
  main: MAIN_HELP,
  run: `Usage: vmbridge run [--config FILE]

Runs everything in one process: the reconcile workers, the spool watcher and the periodic sweep.
At start every mailbox in voicemail.conf is reconciled (the initial import), with \`progress\` log
lines until each has been once. Logs are JSON lines on standard error. SIGHUP reads every setting again (a bad new file keeps the old ones); SIGINT/SIGTERM let the jobs in progress finish, for sync.stopTimeoutSeconds (20) at most.`,
  sync: `Usage: vmbridge sync [--mailbox MAILBOX@CONTEXT]... [--dry-run] [--no-mwi] [--accept-account] [--config FILE]
       vmbridge sync --release-deletes [--config FILE]

Reconciles the named mailboxes (default: every mailbox in voicemail.conf) once, now, and prints
what it plans and does. It takes the same per-mailbox lock as the service, so it is safe to run
while the service runs.

Then it tells every mwi.targets entry the mailbox's message-waiting counts, directly (no running
service is needed), and only where they differ from what that target was last told, by this
command or by the service. A target that fails is queued for \`vmbridge run\` to retry, skipped for
the rest of this run, and makes the exit code 1.

On a terminal a status line below shows mailboxes done of total, emails appended, rate and time
left; when standard output is not a terminal, \`progress\` log lines on standard error say the same.

  -m, --mailbox M@C   Only this mailbox (repeatable)
      --release-deletes  Close the installation-wide deletion breaker (sync.deleteBreaker): the
                      deletions it held are made at the next reconcile of each mailbox
      --accept-account  The mailbox's IMAP account was changed on purpose: forget the records made
                      with the earlier account (whose deletions vmbridge holds meanwhile) and sync
                      every voicemail into the account voicemail.conf names now
  -n, --dry-run       Print the plan; change nothing, publish nothing
      --no-mwi        Reconcile only; publish no message-waiting counts`,
  notify: NOTIFY_HELP,
  doctor: doctorHelp(),
  'conf-check': `Usage: vmbridge conf-check [FILE] [--config FILE]

Reads a voicemail.conf (FILE, default: spool.voicemailConf from the settings, then
/etc/asterisk/voicemail.conf) with its #include and #tryinclude files and prints one line per
option it sets:

  <option>: used|phone-side|not supported|unknown — <why>

used: vmbridge acts on it. phone-side: Asterisk's own business (recording, menus, passwords).
not supported: it would matter to vmbridge and vmbridge does not do it, with what to do instead.
unknown: app_voicemail has no such option. Lines of the file that cannot be used (#exec, a
mailbox line that does not parse) follow, each with its file and line. Exit code 0 when the file
loads, 1 when it cannot be read.`,
};

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(`${HELP.main}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command === '-V' || command === '--version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  switch (command) {
    case 'run':
      return cmdRun(rest);
    case 'sync':
      return cmdSync(rest);
    case 'notify':
      return runNotify(rest);
    case 'doctor':
      return cmdDoctor(rest);
    case 'conf-check':
      return cmdConfCheck(rest);
    default:
      process.stderr.write(`vmbridge: unknown command ${JSON.stringify(command)}\n\n${HELP.main}\n`);
      return 2;
  }
}

function parse(command: string, args: readonly string[], extra: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {}, positionals = false) {
  const { values, positionals: pos } = parseArgs({
    args: [...args],
    allowPositionals: positionals,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      ...extra,
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP[command]}\n`);
    return undefined;
  }
  // parseArgs types its result from the options literal; with options merged in here that type is
  // lost, so the values are read by name below.
  return { values: values as Record<string, string | boolean | string[] | undefined>, positionals: pos };
}

async function settingsFrom(file: string | undefined): Promise<Settings> {
  return (await loadedSettingsFrom(file)).settings;
}

async function loadedSettingsFrom(file: string | undefined): Promise<LoadedSettings> {
  const loaded = await loadSettings({ file, env: process.env });
  for (const w of loaded.warnings) process.stderr.write(`vmbridge: warning: ${w}\n`);
  return loaded;
}

async function cmdRun(args: readonly string[]): Promise<number> {
  const parsed = parse('run', args);
  if (!parsed) return 0;
  const configFile = parsed.values.config as string | undefined;
  const loaded = await loadedSettingsFrom(configFile);
  const running = await ReloadableService.start({
    load: async () => {
      const again = await loadSettings({ file: configFile, env: process.env });
      for (const w of again.warnings) running.log.warn({ warning: w }, 'settings warning');
      return again.settings;
    },
    start: (s, log) => startService(s, log),
    logger: (s) => createLogger(s.log.level),
    onDown: (err) => {
      // Exit non-zero, so that systemd (Restart=on-failure) or the container starts vmbridge again.
      running.log.error({ err: err instanceof Error ? err.message : String(err) }, 'the old settings do not start again either; exiting');
      process.exit(1);
    },
  }, loaded.settings);
  for (const note of loaded.fromVoicemailConf) running.log.info({ setting: note }, 'setting taken from voicemail.conf');
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const { log, settings } = running;
    log.info({ signal, timeoutSeconds: settings.sync.stopTimeoutSeconds }, 'stopping');
    // A reconcile that cannot finish (Redis or IMAP gone mid-job) must not keep the process alive:
    // after the timeout it is left as a crash would leave it, which every restart repairs.
    const timer = setTimeout(() => {
      log.warn({ signal, timeoutSeconds: settings.sync.stopTimeoutSeconds }, 'stop took longer than sync.stopTimeoutSeconds; exiting with work in progress (it is redone at the next start)');
      process.exit(0);
    }, settings.sync.stopTimeoutSeconds * 1000);
    timer.unref();
    const started = Date.now();
    await running.close();
    log.info({ signal, ms: Date.now() - started }, 'stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // Every setting is read again (src/service-reload.ts); a bad new file keeps the old settings.
  process.on('SIGHUP', () => {
    if (!stopping) void running.reload();
  });
  // Runs until a signal stops it.
  return new Promise<number>(() => undefined);
}

async function cmdSync(args: readonly string[]): Promise<number> {
  const parsed = parse('sync', args, {
    mailbox: { type: 'string', short: 'm', multiple: true },
    'dry-run': { type: 'boolean', short: 'n' },
    'no-mwi': { type: 'boolean' },
    'accept-account': { type: 'boolean' },
    'release-deletes': { type: 'boolean' },
  });
  if (!parsed) return 0;
  if (parsed.values['release-deletes'] === true) return releaseDeletes(parsed.values.config as string | undefined);
  const acceptAccount = parsed.values['accept-account'] === true;
  if (acceptAccount && ((parsed.values.mailbox as string[] | undefined) ?? []).length === 0) {
    process.stderr.write('vmbridge: --accept-account needs --mailbox MAILBOX@CONTEXT: it forgets what that mailbox\'s records say about its old IMAP account\n');
    return 2;
  }
  const settings = await settingsFrom(parsed.values.config as string | undefined);
  const log = createLogger(settings.log.level === 'info' ? 'warn' : settings.log.level);
  const dryRun = parsed.values['dry-run'] === true;
  const publishMwi = !dryRun && parsed.values['no-mwi'] !== true && settings.mwi.targets.length > 0;
  const directory = await loadDirectory(settings, log);
  const wanted = (parsed.values.mailbox as string[] | undefined) ?? [];
  for (const w of wanted) {
    if (!directory.boxes.has(w)) {
      const files = voicemailServers(settings).map((s) => s.settings.spool.voicemailConf).join(' or ');
      process.stderr.write(`vmbridge: mailbox ${JSON.stringify(w)} is not in ${files} (or has no IMAP account; see the warnings above). Write it as MAILBOX@CONTEXT, or SERVER/MAILBOX@CONTEXT for a mailbox of servers[].\n`);
      return 1;
    }
  }
  const boxes = [...directory.boxes.values()].filter((b) => wanted.length === 0 || wanted.includes(mailboxKey(b.ref)));
  const audio = dryRun ? undefined : await startAudio(settings, boxes.map((b) => b.attachments), log);
  const transcriber = dryRun ? undefined : await startTranscription(settings, log);
  const redis = createRedis(settings.redis, 'cli', { maxRetriesPerRequest: 2 });
  const pool = new ImapPool(settings.imap, log);
  const state = new StateStore(redis, settings.redis.prefix);
  const breaker = new DeleteBreaker(redis, settings.redis.prefix, settings.sync.deleteBreaker);
  // Mail-client changes go to the spool through the owning Asterisk when it is configured, and
  // wait while a caller is in VoiceMailMain, as in `vmbridge run`.
  const amis: { close(): Promise<void> }[] = [];
  const stores: ServerStore[] = [];
  for (const server of voicemailServers(settings)) {
    const amiSettings = dryRun ? undefined : server.settings.asterisk.ami;
    const ami = amiSettings ? await connectAmiOnce(amiSettings) : undefined;
    if (ami) amis.push(ami);
    stores.push({ name: server.name, label: server.label, store: await openStore(server.settings, ami && amiSettings ? { client: ami, useVoicemailActions: amiSettings.useVoicemailActions } : undefined) });
  }
  const store = new ServerStores(stores);
  // Message-waiting counts go straight to each target: `sync` may run with no service to take a job.
  const mwi = publishMwi
    ? new OneShotMwiPublisher({ targets: settings.mwi.targets, redis, prefix: settings.redis.prefix, store: new MwiStore(redis, settings.redis.prefix), log, reconnectMaxMs: settings.mwi.retryMaxSeconds * 1000 })
    : undefined;
  let failures = 0;
  // Mailboxes done of total, appended, rate, time left: a line kept at the bottom of a terminal,
  // else `progress` log lines on standard error (docs/sync.md, "Progress of a long pass").
  const meter = new ProgressMeter(boxes.length, Date.now);
  const status = process.stdout.isTTY ? new StatusLine(process.stdout) : undefined;
  const progressLog = status ? undefined : createLogger(settings.log.level);
  const print = (text: string): void => void (status ? status.print(text) : process.stdout.write(text));
  status?.show(formatProgress(meter.snapshot()));
  try {
    let n = 0;
    for (const box of boxes) {
      n++;
      const name = mailboxKey(box.ref);
      const lock = await acquireMailboxLock(redis, lockKey(settings.redis.prefix, box.ref));
      let counted = false;
      let appended = 0;
      let failed = false;
      try {
        if (acceptAccount && !dryRun) {
          // The old account's records mean nothing in the new one: forget them, and every voicemail
          // of the mailbox is appended to the account voicemail.conf names now.
          await state.clear(box.ref);
          await state.setAccount(box.ref, accountKey(box.account));
          print(`${name}: records of the earlier IMAP account forgotten; syncing with ${box.account.user}\n`);
        }
        const result = await reconcileMailbox({ store, settings, state, imap: pool, log, breaker, ownerName: (r) => directory.boxes.get(mailboxKey(r))?.owner.fullName, ...(audio ? { audio } : {}), ...(transcriber ? { transcriber } : {}) }, box, {
          dryRun,
        });
        appended = appendedBy(result);
        // Written under the mailbox's lock, as the service does, so desired counts land in order.
        if (mwi && result.counts) {
          await mwi.record(box.ref, result.counts);
          counted = true;
        }
        print(`[${n}/${boxes.length}] ${name}: ${describePlan(result.plan.ops, dryRun)}${result.plan.held.length ? `, ${result.plan.held.length} held` : ''}${result.skipped.length ? `, ${result.skipped.length} skipped` : ''}\n`);
        for (const op of result.plan.ops) print(`    ${dryRun ? 'would ' : ''}${describeOp(op)}\n`);
        for (const h of result.plan.held) print(`    held ${h.id}: ${h.reason} (${h.detail})\n`);
        for (const s of result.skipped) print(`    skipped ${s.op.id}: ${s.problem}\n`);
      } catch (err) {
        failures++;
        failed = true;
        print(`[${n}/${boxes.length}] ${name}: FAILED: ${err instanceof Error ? err.message : String(err)}\n`);
      } finally {
        await lock.release();
      }
      // Sent after the lock is released, so a slow target holds up no reconcile of the service.
      if (mwi && counted) {
        const results = await mwi.publish(box.ref);
        print(describeMwi(results));
        if (results.some((r) => r.status === 'failed' || r.status === 'skipped')) failures++;
      }
      meter.mailboxDone(appended, failed);
      if (status) status.show(formatProgress(meter.snapshot()));
      else if (progressLog) logProgress(meter, progressLog);
    }
  } finally {
    status?.end();
    await mwi?.close();
    await pool.close();
    await audio?.close();
    await transcriber?.close();
    for (const ami of amis) await ami.close();
    await store.close();
    redis.disconnect();
  }
  return failures > 0 ? 1 : 0;
}

/** `    MWI 2/1 (0 urgent): owner published, phone unchanged` and a line per failed target. */
function describeMwi(results: readonly OneShotResult[]): string {
  const counts = results.find((r) => r.counts)?.counts;
  const shown = counts ? `${counts.new}/${counts.old} (${counts.urgent} urgent)` : 'not counted yet';
  const lines = [`    MWI ${shown}: ${results.map((r) => `${r.target} ${r.status}`).join(', ')}\n`];
  for (const r of results) {
    if (r.status === 'failed' || r.status === 'skipped') {
      lines.push(`    MWI ${r.target} ${r.status === 'failed' ? 'FAILED' : 'skipped after an earlier failure'}: ${r.error ?? ''}${r.queued ? ' (queued for vmbridge run to retry)' : ''}\n`);
    }
  }
  return lines.join('');
}

function describePlan(ops: readonly Op[], dryRun: boolean): string {
  if (ops.length === 0) return 'in step, nothing to do';
  return `${ops.length} change${ops.length === 1 ? '' : 's'}${dryRun ? ' planned' : ' applied'}`;
}

function describeOp(op: Op): string {
  switch (op.kind) {
    case 'append':
      return `append ${op.id} as ${op.folder} (${op.reason})`;
    case 'update-email':
      return `update email ${op.id} uid ${op.uid}: ${op.from}->${op.to} for ${op.folder} (${op.reason})`;
    case 'delete-email':
      return `delete email ${op.id} uid ${op.uid} in ${op.role} (${op.reason})`;
    case 'move-voicemail':
      return `move voicemail ${op.id} ${op.from}->${op.to} (${op.reason})`;
    case 'delete-voicemail':
      return `delete voicemail ${op.id} from ${op.folder} (${op.reason})`;
    case 'record':
      return `record ${op.id} as ${op.record.folder} (${op.reason})`;
    case 'forget':
      return `forget ${op.id} (${op.reason})`;
  }
}

async function cmdDoctor(args: readonly string[]): Promise<number> {
  const parsed = parse('doctor', args, {
    json: { type: 'boolean' },
    accounts: { type: 'string' },
  });
  if (!parsed) return 0;
  const json = parsed.values.json === true;
  const accountsArg = parsed.values.accounts as string | undefined;
  const maxAccounts = accountsArg === undefined ? DEFAULT_MAX_ACCOUNTS : Number(accountsArg);
  if (!Number.isInteger(maxAccounts) || maxAccounts < 1) {
    throw new VmbridgeError('USAGE', `doctor: --accounts takes a whole number of at least 1 (got ${JSON.stringify(accountsArg)})`);
  }
  const write = (r: Parameters<typeof renderText>[0]): void => {
    process.stdout.write(json ? renderJson(r) : renderText(r));
  };
  const file = parsed.values.config as string | undefined;
  let loaded: Awaited<ReturnType<typeof loadSettings>>;
  try {
    loaded = await loadSettings({ file, env: process.env });
  } catch (err) {
    // Settings that do not load are the first thing the doctor reports, in the same form as the rest.
    if (!(err instanceof VmbridgeError)) throw err;
    const r = summarize(file, [{ section: 'settings', status: 'fail', message: err.message }]);
    write(r);
    return 1;
  }
  const before: CheckResult[] = [
    { section: 'settings', status: 'ok', message: `${loaded.file ?? 'no settings file; everything from the environment'} loaded` },
    ...loaded.fromVoicemailConf.map((n): CheckResult => ({ section: 'settings', status: 'ok', message: n })),
    ...loaded.warnings.map((w): CheckResult => ({ section: 'settings', status: 'warn', message: w })),
  ];
  const r = await runDoctor(loaded.settings, { settingsFile: loaded.file, maxAccounts, before });
  write(r);
  return r.ok ? 0 : 1;
}

export function report(err: unknown, log?: Logger): number {
  if (err instanceof VmbridgeError) {
    process.stderr.write(`vmbridge: ${err.message}\n`);
    return err.code === 'USAGE' ? 2 : 1;
  }
  if (err instanceof Error && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`vmbridge: ${err.message}\nTry: vmbridge --help\n`);
    return 2;
  }
  log?.error({ err }, 'failed');
  process.stderr.write(`vmbridge: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}

async function cmdConfCheck(args: readonly string[]): Promise<number> {
  const parsed = parse('conf-check', args, {}, true);
  if (!parsed) return 0;
  let file = parsed.positionals[0];
  if (file === undefined) {
    try {
      file = (await settingsFrom(parsed.values.config as string | undefined)).spool.voicemailConf;
    } catch {
      file = '/etc/asterisk/voicemail.conf';
    }
  }
  let conf: Awaited<ReturnType<typeof readVoicemailConf>>;
  try {
    conf = await readVoicemailConf(file);
  } catch (err) {
    process.stderr.write(`vmbridge: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  const report = checkOptions(conf);
  process.stdout.write(`${file}: ${conf.boxes.length} mailbox${conf.boxes.length === 1 ? '' : 'es'}, ${report.length} option${report.length === 1 ? '' : 's'}\n`);
  for (const line of renderOptionReport(report)) process.stdout.write(`${line}\n`);
  for (const p of conf.problems) process.stdout.write(`${p.file}:${p.line}: ${p.problem}\n`);
  return 0;
}

async function releaseDeletes(configFile: string | undefined): Promise<number> {
  const settings = await settingsFrom(configFile);
  const redis = createRedis(settings.redis, 'cli', { maxRetriesPerRequest: 2 });
  try {
    const breaker = new DeleteBreaker(redis, settings.redis.prefix, settings.sync.deleteBreaker);
    const was = await breaker.state();
    await breaker.release();
    process.stdout.write(was
      ? `deletion breaker released (open since ${was.since}, ${was.deletions} deletions counted); held deletions are made at each mailbox's next reconcile\n`
      : 'the deletion breaker was not open; its count starts afresh\n');
    return 0;
  } finally {
    redis.disconnect();
  }
}

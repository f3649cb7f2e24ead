/**
 * Events during a backlog: how long a new voicemail takes to become an email while vmbridge works
 * through the start-up pass of every mailbox, beside the same when nothing else is queued (the
 * floor of this run). Issue: event latency during a pass over thousands of mailboxes stays within
 * 2x its idle value, because events are jobs of their own lane (docs/sync.md, "Two lanes").
 *
 *   BENCH_LANES_MAILBOXES  mailboxes (default 2000; 10000 for the size of a large site)
 *   BENCH_LANES_SAMPLES    voicemails measured idle and again during the backlog (default 20)
 *   BENCH_LANES_BACKGROUND sync.backgroundConcurrency (default: unset, the setting's own default)
 *   BENCH_LANES_IDLE_SECONDS how long the settled service is watched for its idle CPU (default 60)
 *   BENCH_LANES_ACTION_SAMPLES emails read per way of hearing it with push or IDLE (default 20)
 *   BENCH_LANES_IDLE_ACCOUNTS imap.idle.maxAccounts while IDLE is measured (default 100, the setting's)
 *   BENCH_LANES_SWEEP_SECONDS spool.sweepSeconds while only the sweep hears it (default 30)
 *   BENCH_LANES_CLIENTS_PER_IMAP IMAP sessions per Dovecot imap process (default 10; see below)
 *   BENCH_LANES_CALM       sync.backgroundCalmConcurrency (default: unset, the setting's own default)
 *   BENCH_LANES_FIRST_ONLY 1: measure the first pass only, print it, write nothing
 *   BENCH_LANES_AMI        0: no owning Asterisk (AMI test server) for moves and lamps
 *   BENCH_LANES_PUSH       0: Dovecot without the push script (the push phase then waits in vain)
 *
 * Private Dovecot with that many users and a master user (as large sites log in), Redis, and
 * vmbridge built and run as a real process. The backlog is the pass a restart makes over every
 * mailbox; each sample is counted only if the backlog still held jobs when it was taken.
 * The bench's Dovecot serves several sessions per imap process, as a site with hundreds of IDLE
 * sessions must: each imap process in IDLE takes an inotify instance, every one of them runs as
 * one user, and past fs.inotify.max_user_instances (128 by default) Dovecot looks at an idling
 * folder only every 30 s (docs/sync.md, "Dovecot with many IDLE sessions").
 * Writes bench/results/lanes.json and lanes.md.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImapFlow } from 'imapflow';
import { stringify } from 'yaml';
import type { MailboxRef } from '../src/spool/types.js';
import { leaveVoicemail, listFolder } from '../test/support/asterisk-spool.js';
import { startAmiServer } from '../test/support/ami-server.js';
import { startDovecot } from '../test/support/dovecot.js';
import { freePort } from '../test/support/ports.js';
import { shortTempDir } from '../test/support/processes.js';
import { startRedis } from '../test/support/redis.js';
import { backgroundCalmConcurrency } from '../workers/reconcile.js';
import { settingsSchema } from '../src/config/schema.js';
import { open, peakRssMiB, progress, ROOT, startVmbridge, stats, type Stats, type Vmbridge } from './support.js';

const MAILBOXES = Number(process.env.BENCH_LANES_MAILBOXES ?? 2000);
const SAMPLES = Number(process.env.BENCH_LANES_SAMPLES ?? 20);
const BACKGROUND = process.env.BENCH_LANES_BACKGROUND ? Number(process.env.BENCH_LANES_BACKGROUND) : undefined;
const MASTER = { user: 'vmbmaster', pass: 'bench-master-password' };

interface QueueDepth { waiting: number; prioritized: number; active: number }

async function queueDepth(httpPort: number): Promise<QueueDepth> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  // Both lanes: the event queue and the background one; and the owning Asterisk's lamps.
  const read = (state: string): number => ['reconcile', 'reconcile-background', 'mwi-owner']
    .map((queue) => Number(new RegExp(`^vmbridge_queue_jobs\\{queue="${queue}",state="${state}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? (queue === 'mwi-owner' ? 0 : NaN)))
    .reduce((a, b) => a + b, 0);
  return { waiting: read('waiting'), prioritized: read('prioritized'), active: read('active') };
}

const backlogOf = (d: QueueDepth): number => d.waiting + d.prioritized + d.active;

async function drained(httpPort: number, what: string): Promise<number> {
  const t = performance.now();
  for (;;) {
    const d = await queueDepth(httpPort);
    if (backlogOf(d) === 0) return (performance.now() - t) / 1000;
    progress(what, MAILBOXES - Math.min(MAILBOXES, backlogOf(d)), MAILBOXES);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** One voicemail until its email is in INBOX, seen by the user's own session. */
async function inboxCount(observer: ImapFlow): Promise<number> {
  const st = await observer.status('INBOX', { messages: true });
  return st ? (st.messages ?? 0) : 0;
}

async function oneVoicemail(spoolDir: string, ref: MailboxRef, observer: ImapFlow, i: number): Promise<number> {
  const before = await inboxCount(observer);
  await leaveVoicemail(spoolDir, ref, { callerid: `"Lane ${i}" <${1000 + i}>`, duration: 3, formats: ['wav'] });
  const t = performance.now();
  for (;;) {
    if ((await inboxCount(observer)) > before) return performance.now() - t;
    if (performance.now() - t > 300_000) throw new Error(`voicemail ${i} for ${ref.mailbox} not visible after 300 s`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * The floor of a pass: a minimal client that, `concurrency` at a time, logs in as each user (as
 * the master user, as vmbridge does), asks STATUS of INBOX and logs out.
 */
async function floorPass(port: number, users: readonly string[], concurrency: number): Promise<number> {
  const { ImapFlow } = await import('imapflow');
  let next = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (;;) {
      const i = next++;
      if (i >= users.length) return;
      const c = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user: `${users[i]}*${MASTER.user}`, pass: MASTER.pass }, logger: false, disableAutoIdle: true });
      c.on('error', () => undefined);
      await c.connect();
      await c.status('INBOX', { messages: true, uidNext: true, uidValidity: true, highestModseq: true });
      await c.logout();
      progress('floor: LOGIN + STATUS + LOGOUT per account', i + 1, users.length);
    }
  }));
  return (performance.now() - t) / 1000;
}

async function stop(vm: Vmbridge): Promise<void> {
  const exited = new Promise((r) => vm.child.once('exit', r));
  vm.child.kill('SIGTERM');
  await exited;
}

const DOVEADM_KEY = 'bench-doveadm-key';
const IDLE_SECONDS = Number(process.env.BENCH_LANES_IDLE_SECONDS ?? 60);
const ACTION_SAMPLES = Number(process.env.BENCH_LANES_ACTION_SAMPLES ?? 20);
const SWEEP_SECONDS = Number(process.env.BENCH_LANES_SWEEP_SECONDS ?? 30);
const IDLE_ACCOUNTS = Number(process.env.BENCH_LANES_IDLE_ACCOUNTS ?? 100);
const CLIENTS_PER_IMAP = Number(process.env.BENCH_LANES_CLIENTS_PER_IMAP ?? 10);
const FIRST_ONLY = process.env.BENCH_LANES_FIRST_ONLY === '1';
const IMAP_CONNECTIONS = 100;
/** sync.concurrency, which the bench leaves at its default. */
const SYNC_CONCURRENCY = settingsSchema.shape.sync.parse({}).concurrency;
const WITH_AMI = process.env.BENCH_LANES_AMI !== '0';
const WITH_PUSH = process.env.BENCH_LANES_PUSH !== '0';
const CALM = process.env.BENCH_LANES_CALM ? Number(process.env.BENCH_LANES_CALM) : undefined;

/**
 * An email read in the user's own mail client until its voicemail is in the spool's Old folder
 * (the reconcile that moves it publishes the lamps): the email action -> spool + MWI path.
 */
async function oneRead(spoolDir: string, ref: MailboxRef, observer: ImapFlow, limitMs: number): Promise<number> {
  const before = (await listFolder(spoolDir, ref, 'Old')).length;
  const lock = await observer.getMailboxLock('INBOX');
  let t: number;
  try {
    const unseen = await observer.search({ seen: false }, { uid: true });
    const uid = unseen === false || unseen === undefined ? undefined : unseen[0];
    if (uid === undefined) throw new Error(`no unread voicemail email left in ${ref.mailbox}'s INBOX (raise BENCH_LANES_SAMPLES)`);
    t = performance.now();
    await observer.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true });
  } finally {
    lock.release();
  }
  for (;;) {
    if ((await listFolder(spoolDir, ref, 'Old')).length > before) return performance.now() - t;
    if (performance.now() - t > limitMs) throw new Error(`the read email of ${ref.mailbox} not in Old after ${limitMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // After "pid (comm) ", utime and stime are the 12th and 13th fields.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/**
 * CPU of a settled vmbridge over IDLE_SECONDS, as % of one core, beside its floor in the same
 * minute: a bare Node process that only keeps a one-second timer.
 */
async function idleCpu(pid: number): Promise<{ vmbridge: number; floor: number }> {
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 2_000));
  const [v0, b0] = [await cpuSeconds(pid), await cpuSeconds(bare.pid!)];
  for (let s = 0; s < IDLE_SECONDS; s += 5) {
    await new Promise((r) => setTimeout(r, 5_000));
    progress('idle CPU', Math.min(IDLE_SECONDS, s + 5), IDLE_SECONDS);
  }
  const [v1, b1] = [await cpuSeconds(pid), await cpuSeconds(bare.pid!)];
  bare.kill('SIGTERM');
  const pct = (a: number, b: number): number => Math.round(((b - a) / IDLE_SECONDS) * 1000) / 10;
  return { vmbridge: pct(v0, v1), floor: pct(b0, b1) };
}

async function imapConnections(httpPort: number): Promise<{ command: number; idle: number }> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const read = (kind: string): number => Number(new RegExp(`^vmbridge_imap_connections\\{kind="${kind}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { command: read('command'), idle: read('idle') };
}

async function main(): Promise<void> {
  const dir = await shortTempDir('vmb-l');
  const spoolDir = join(dir, 'spool');
  await mkdir(join(spoolDir, 'voicemail'), { recursive: true });
  const boxes: MailboxRef[] = Array.from({ length: MAILBOXES }, (_, i) => ({ context: 'default', mailbox: String(100_000 + i) }));
  // Measured in mailboxes spread over the whole list, past the first 100 (the IDLE set): they
  // are heard by the spool watcher, as every mailbox of a large site is.
  const measured = Array.from({ length: 4 }, (_, k) => boxes[Math.floor(((k + 1) * MAILBOXES) / 5)]!);
  process.stderr.write(`starting private Dovecot (${MAILBOXES} users) and Redis\n`);
  // Dovecot POSTs every mail change to vmbridge's push endpoint; only the push phase below takes
  // them (http.push.enabled), the other phases answer 404 and hear changes their own way.
  const httpPort = await freePort();
  const dovecot = await startDovecot({ users: boxes.map((b) => ({ user: `u${b.mailbox}`, pass: `pw-u${b.mailbox}` })), masterUser: MASTER, doveadmApiKey: DOVEADM_KEY, imapClientsPerProcess: CLIENTS_PER_IMAP, ...(WITH_PUSH ? { push: { url: `http://127.0.0.1:${httpPort}/dovecot-push` } } : {}) });
  const redis = await startRedis();
  // The Asterisk that owns the spool, as the project's AMI test server: vmbridge moves voicemail
  // through it (VoicemailMove), asks it whether a caller is in VoiceMailMain, and lights its
  // lamps (VoicemailRefresh), as at a real site.
  const ami = await startAmiServer({ spoolDir, profile: 'voicemail' });
  const amiLogin = { host: '127.0.0.1', port: ami.port, username: 'bridge', secret: 'bridge' };
  /** The actions the owning Asterisk was sent so far, by name. */
  const amiActionCounts = (): Record<string, number> => {
    const counts: Record<string, number> = {};
    for (const a of ami.received) counts[a.action] = (counts[a.action] ?? 0) + 1;
    return Object.fromEntries(Object.entries(counts).sort());
  };
  let vm: Vmbridge | undefined;
  try {
    const confPath = join(dir, 'voicemail.conf');
    await writeFile(confPath, ['[general]', 'format=wav', '', '[default]', ...boxes.map((b) => `${b.mailbox} => 1,Bench ${b.mailbox},u${b.mailbox}@example.invalid,,imapuser=u${b.mailbox}`), ''].join('\n'));
    const configPath = join(dir, 'vmbridge.yaml');
    interface Heard { push?: boolean; idleAccounts?: number; notify?: boolean; sweepSeconds?: number }
    const settingsOf = (doveadm: boolean, heard: Heard = {}): Record<string, unknown> => ({
      spool: { dir: spoolDir, voicemailConf: confPath, watch: true, sweepSeconds: heard.sweepSeconds ?? 0 },
      redis: { url: redis.url, prefix: 'lanes' },
      imap: { host: '127.0.0.1', port: dovecot.port, secure: false, requireTls: false, maxConnections: IMAP_CONNECTIONS, login: { mode: 'master', masterUser: MASTER.user, masterPassword: MASTER.pass }, ...(doveadm ? { doveadm: { url: dovecot.doveadmUrl, apiKey: DOVEADM_KEY } } : {}), ...(heard.idleAccounts !== undefined ? { idle: { maxAccounts: heard.idleAccounts, notify: heard.notify ?? true } } : {}) },
      email: { messageIdDomain: 'bench.invalid', audio: 'original' },
      log: { level: 'info' },
      http: { host: '127.0.0.1', port: httpPort, push: { enabled: heard.push === true } },
      alerts: { quotaCheckSeconds: 0 },
      ...(WITH_AMI ? { asterisk: { ami: amiLogin }, mwi: { targets: [{ name: 'owner', kind: 'ami-refresh', ...amiLogin }] } } : {}),
      sync: { ...(BACKGROUND !== undefined ? { backgroundConcurrency: BACKGROUND } : {}), ...(CALM !== undefined ? { backgroundCalmConcurrency: CALM } : {}) },
    });
    await writeFile(configPath, stringify(settingsOf(false)));
    const doveadmConfigPath = join(dir, 'vmbridge-doveadm.yaml');
    await writeFile(doveadmConfigPath, stringify(settingsOf(true)));

    // First start: every mailbox's first reconcile, let finish.
    vm = startVmbridge(configPath, join(ROOT, 'bench/results/vmbridge-lanes-first.log'));
    const t0 = performance.now();
    await vm.ready;
    await drained(httpPort, 'first pass');
    const firstPassSeconds = (performance.now() - t0) / 1000;
    if (FIRST_ONLY) {
      const { Redis } = await import('ioredis');
      const r = new Redis(redis.url);
      const stats = await r.info('commandstats');
      r.disconnect();
      const calls = [...stats.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])] as const).sort((a, b) => b[1] - a[1]);
      process.stdout.write(`Redis commands per mailbox: ${calls.slice(0, 12).map(([c, n]) => `${c} ${Math.round((n / MAILBOXES) * 10) / 10}`).join(', ')}\n`);
      const actions = Object.entries(amiActionCounts()).map(([a, n]) => `${n} ${a}`).join(', ');
      process.stdout.write(`first pass over ${MAILBOXES} mailboxes: ${Math.round(firstPassSeconds * 10) / 10} s (vmbridge CPU ${Math.round((await cpuSeconds(vm.child.pid!)) * 10) / 10} s); AMI actions: ${actions} (BENCH_LANES_FIRST_ONLY: nothing else measured, no results written)\n`);
      return;
    }

    const observers = new Map<string, ImapFlow>();
    for (const b of measured) observers.set(b.mailbox, await open(dovecot.port, `u${b.mailbox}`));
    const idle: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const b = measured[i % measured.length]!;
      idle.push(await oneVoicemail(spoolDir, b, observers.get(b.mailbox)!, i));
      progress('idle: new voicemail -> email', i + 1, SAMPLES);
    }
    await stop(vm);

    // Restart: the start-up pass queues every mailbox again; events arrive while it drains.
    vm = startVmbridge(configPath, join(ROOT, 'bench/results/vmbridge-lanes-restart.log'));
    const t1 = performance.now();
    await vm.ready;
    const during: number[] = [];
    const backlogs: number[] = [];
    let outside = 0;
    for (let i = 0; during.length < SAMPLES && i < SAMPLES * 3; i++) {
      const depth = backlogOf(await queueDepth(httpPort));
      const b = measured[i % measured.length]!;
      const ms = await oneVoicemail(spoolDir, b, observers.get(b.mailbox)!, SAMPLES + i);
      if (depth > 0 && backlogOf(await queueDepth(httpPort)) > 0) {
        during.push(ms);
        backlogs.push(depth);
      } else {
        outside++;
      }
      progress('during the start-up pass: new voicemail -> email', during.length, SAMPLES);
    }
    const restartPassSeconds = (performance.now() - t1) / 1000 + (await drained(httpPort, 'restart pass'));
    // The same pass once more with nothing happening meanwhile, beside its floor.
    const rssRestart = await peakRssMiB(vm.child.pid!);
    await stop(vm);
    vm = startVmbridge(configPath, join(ROOT, 'bench/results/vmbridge-lanes-quiet.log'));
    const t2 = performance.now();
    await vm.ready;
    const quietPassSeconds = (performance.now() - t2) / 1000 + (await drained(httpPort, 'quiet restart pass'));
    // The quiet pass meets no event, so the background lane runs at its calm pace: the floor as
    // well, worked out as the service does from the settings the bench gives it.
    const laneConcurrency = backgroundCalmConcurrency({ concurrency: SYNC_CONCURRENCY, backgroundConcurrency: BACKGROUND, backgroundCalmConcurrency: CALM }, IMAP_CONNECTIONS);
    const floorPassSeconds = await floorPass(dovecot.port, boxes.map((b) => `u${b.mailbox}`), laneConcurrency);
    const rssMiB = Math.max(rssRestart, await peakRssMiB(vm.child.pid!));
    await stop(vm);
    // The same quiet pass beside Dovecot's doveadm API: one call for every user, then no login
    // for a mailbox whose mark matches (docs/sync.md, "The sweep beside Dovecot").
    vm = startVmbridge(doveadmConfigPath, join(ROOT, 'bench/results/vmbridge-lanes-doveadm.log'));
    const t3 = performance.now();
    await vm.ready;
    const doveadmPassSeconds = (performance.now() - t3) / 1000 + (await drained(httpPort, 'quiet pass with doveadm'));
    // Settled: nothing happens but the IDLE watchers (imap.idle.maxAccounts) and the timers.
    const cpuIdle = await idleCpu(vm.child.pid!);
    const connections = await imapConnections(httpPort);
    await stop(vm);

    // Email action -> spool + MWI, for the measured mailboxes, heard four ways: Dovecot push with
    // no IDLE at all (every account outside any IDLE set); inside the IDLE set (chosen by need:
    // the measured accounts have unread voicemail), with NOTIFY and without; and outside any IDLE
    // set without push, where only the sweep (beside doveadm) finds it.
    const actionPhase = async (name: string, heard: Heard, samples: number, limitMs: number): Promise<Stats> => {
      const path = join(dir, `vmbridge-${name}.yaml`);
      await writeFile(path, stringify(settingsOf(true, heard)));
      vm = startVmbridge(path, join(ROOT, `bench/results/vmbridge-lanes-${name}.log`));
      await vm.ready;
      await drained(httpPort, `${name}: start-up pass`);
      // The IDLE set is chosen again by need every imap.idle.rechooseSeconds (60): after the pass
      // has counted the unread voicemail, the next choice takes the measured accounts in.
      await new Promise((r) => setTimeout(r, heard.idleAccounts === 0 ? 1_000 : 75_000));
      const out: number[] = [];
      for (let i = 0; i < samples; i++) {
        const b = measured[i % measured.length]!;
        // Dovecot drops a session left unused through the long passes above: log in again.
        let observer = observers.get(b.mailbox)!;
        if (!observer.usable) {
          observer = await open(dovecot.port, `u${b.mailbox}`);
          observers.set(b.mailbox, observer);
        }
        out.push(await oneRead(spoolDir, b, observer, limitMs));
        progress(`${name}: email read -> voicemail in Old`, i + 1, samples);
      }
      await stop(vm);
      return stats(out);
    };
    // Enough unread voicemail for every read below; the first phase's start-up pass emails it.
    const reads = 3 * ACTION_SAMPLES + 4;
    for (const b of measured) {
      for (let i = 0; i < Math.ceil(reads / measured.length); i++) await leaveVoicemail(spoolDir, b, { callerid: `"To read ${i}" <${7000 + i}>`, duration: 2, formats: ['wav'] });
    }
    const readPush = await actionPhase('push', { push: true, idleAccounts: 0 }, ACTION_SAMPLES, 60_000);
    const readNotify = await actionPhase('notify', { idleAccounts: IDLE_ACCOUNTS, notify: true }, ACTION_SAMPLES, 60_000);
    const readIdle = await actionPhase('idle', { idleAccounts: IDLE_ACCOUNTS, notify: false }, ACTION_SAMPLES, 60_000);
    const readSweep = await actionPhase('sweep', { idleAccounts: 0, sweepSeconds: SWEEP_SECONDS }, 4, (SWEEP_SECONDS + 120) * 1000);
    vm = undefined;
    // Idle through the long passes, a session may have been dropped by now: nothing to log out then.
    await Promise.all([...observers.values()].map((o) => o.logout().catch(() => o.close())));

    const idleStats = stats(idle);
    const duringStats: Stats | undefined = during.length > 0 ? stats(during) : undefined;
    const ratio = duringStats ? Math.round((duringStats.p50 / idleStats.p50) * 100) / 100 : NaN;
    const result = {
      date: new Date().toISOString(),
      mailboxes: MAILBOXES,
      backgroundConcurrency: BACKGROUND ?? 'default (half of sync.concurrency)',
      firstPassSeconds: Math.round(firstPassSeconds * 10) / 10,
      restartPassSeconds: Math.round(restartPassSeconds * 10) / 10,
      quietPassSeconds: Math.round(quietPassSeconds * 10) / 10,
      floorPassSeconds: Math.round(floorPassSeconds * 10) / 10,
      floorConcurrency: laneConcurrency,
      quietPassOverFloor: Math.round((quietPassSeconds / floorPassSeconds) * 100) / 100,
      doveadmPassSeconds: Math.round(doveadmPassSeconds * 10) / 10,
      doveadmPassOverFloor: Math.round((doveadmPassSeconds / floorPassSeconds) * 100) / 100,
      idle: idleStats,
      duringBacklog: duringStats,
      backlogJobsAtSample: backlogs.length > 0 ? { min: Math.min(...backlogs), max: Math.max(...backlogs) } : undefined,
      samplesAfterBacklogDrained: outside,
      p50Ratio: ratio,
      target: 'p50 during the backlog <= 2x idle p50',
      met: Number.isFinite(ratio) && ratio <= 2,
      peakRssMiB: rssMiB,
      idleCpuPercent: cpuIdle.vmbridge,
      idleCpuFloorPercent: cpuIdle.floor,
      idleSeconds: IDLE_SECONDS,
      imapConnectionsIdle: connections,
      emailReadToSpool: { push: readPush, idleNotify: readNotify, idleOnly: readIdle, idleAccounts: IDLE_ACCOUNTS, sweepOnly: readSweep, sweepSeconds: SWEEP_SECONDS },
      dovecotClientsPerImapProcess: CLIENTS_PER_IMAP,
      amiActions: amiActionCounts(),
    };
    const row = (label: string, s: Stats | undefined): string => (s ? `| ${label} | ${s.n} | ${s.p50} | ${s.p95} | ${s.max} |` : `| ${label} | 0 | | | |`);
    const row99 = (label: string, s: Stats): string => `| ${label} | ${s.n} | ${s.p50} | ${s.p99} | ${s.max} |`;
    const md = [
      `vmbridge lanes benchmark, ${result.date}, ${MAILBOXES} mailboxes (master-user login), sync.backgroundConcurrency ${result.backgroundConcurrency}`,
      '',
      '| new voicemail -> email (ms) | n | p50 | p95 | max |',
      '| --- | --- | --- | --- | --- |',
      row('floor: nothing else queued', idleStats),
      row('during the start-up pass of every mailbox', duringStats),
      '',
      `backlog when each sample was taken: ${result.backlogJobsAtSample ? `${result.backlogJobsAtSample.min}-${result.backlogJobsAtSample.max} jobs` : 'none'}; samples left out because the backlog had drained: ${outside}`,
      `first pass over ${MAILBOXES} mailboxes: ${result.firstPassSeconds} s; pass after a restart (with the voicemails measured above): ${result.restartPassSeconds} s; peak RSS ${rssMiB} MiB`,
      `quiet pass after a restart (nothing changed): ${result.quietPassSeconds} s, beside the floor of LOGIN + STATUS + LOGOUT per account ${laneConcurrency} at a time, the lane's pace with no event around: ${result.floorPassSeconds} s (${result.quietPassOverFloor}x; issue target for a sweep: at most 2x)`,
      `the same quiet pass with imap.doveadm (one doveadm API call for every user, then no IMAP login for a quiet mailbox): ${result.doveadmPassSeconds} s (${result.doveadmPassOverFloor}x the same floor)`,
      '',
      `| email read -> voicemail in Old (ms; Dovecot: ${CLIENTS_PER_IMAP} sessions per imap process) | n | p50 | p99 | max |`,
      '| --- | --- | --- | --- | --- |',
      row99('Dovecot push, no IDLE (outside any IDLE set)', readPush),
      row99(`inside the IDLE set (imap.idle.maxAccounts ${IDLE_ACCOUNTS}, chosen by unread voicemail), with NOTIFY`, readNotify),
      row99(`inside the IDLE set, without NOTIFY (imap.idle.notify false)`, readIdle),
      row99(`outside any IDLE set, no push: the sweep every ${SWEEP_SECONDS} s, beside doveadm`, readSweep),
      '',
      `the owning Asterisk (the project's AMI test server) was sent, over the whole run: ${Object.entries(result.amiActions).map(([a, n]) => `${n} ${a}`).join(', ')}; its lamp queue (mwi-owner) counts in every pass's time above`,
      `settled afterwards, over ${IDLE_SECONDS} s: vmbridge ${cpuIdle.vmbridge} % of one core (floor, a bare Node process with one timer, the same minute: ${cpuIdle.floor} %); IMAP connections open: ${connections.idle} IDLE, ${connections.command} command`,
      `target ${result.target}: ${result.met ? 'met' : 'not met'} (ratio ${ratio})`,
      '',
    ].join('\n');
    await mkdir(join(ROOT, 'bench/results'), { recursive: true });
    await writeFile(join(ROOT, 'bench/results/lanes.json'), `${JSON.stringify(result, null, 2)}\n`);
    await writeFile(join(ROOT, 'bench/results/lanes.md'), md);
    process.stdout.write(md);
  } finally {
    if (vm) await stop(vm).catch(() => undefined);
    await ami.close();
    await redis.stop();
    await dovecot.stop();
  }
}

await main();

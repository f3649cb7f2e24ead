/**
 * The periodic quota sweep as the `quota` queue, on a real Dovecot with quota, a real Redis and a
 * real SMTP server: two services on one Redis (as two vmbridge processes) sweep once per period
 * between them and never at once, also when a sweep takes longer than the period; the crossing
 * it sees is mailed once; a sweep that can reach no account is retried with backoff and kept as
 * failed, and a retry that reaches the server again completes the job; shutdown stops a sweep
 * early and leaves its job to a retry; setting the schedule again (a restart, another process)
 * keeps the next sweep's time; quotaCheckSeconds 0 removes the schedule.
 *
 * vmbridge reaches Dovecot through a relay in this file that can slow the server's answers or
 * refuse connections, and that counts the GETQUOTAROOT commands sent.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { ParsedMail } from 'mailparser';
import { startAlerts } from '../../src/alerts/start.js';
import type { SweepResult } from '../../src/alerts/sweep.js';
import type { Settings } from '../../src/config/schema.js';
import { ImapPool } from '../../src/imap/pool.js';
import { QUEUE_RECONCILE, type ReconcileJob } from '../../src/queue/jobs.js';
import { QUEUE_QUOTA, QUOTA_SWEEP_ATTEMPTS, QUOTA_SWEEP_SCHEDULER, QuotaSweepQueue, quotaSweepBackoffMs, type QuotaSweepJob } from '../../src/queue/quota-queue.js';
import { loadDirectory, type Service } from '../../src/service.js';
import { startHarness, type Harness } from '../support/harness.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { waitFor } from '../support/wait.js';

const FROM = 'vmbridge@example.invalid';
const ADMIN = 'pbx-admin@example.invalid';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Relay {
  readonly port: number;
  upstreamPort: number | undefined;
  /** Everything the server sends reaches vmbridge this much later. */
  delayMs: number;
  /** Down: open connections are cut and new ones closed at once, as if the server were gone. */
  setDown(down: boolean): void;
  /** When each GETQUOTAROOT command went through (epoch ms). */
  readonly quotaReads: number[];
  close(): Promise<void>;
}

async function startRelay(): Promise<Relay> {
  const sockets = new Set<Socket>();
  let down = false;
  const relay: Relay = {
    port: 0,
    upstreamPort: undefined,
    delayMs: 0,
    setDown(v) {
      down = v;
      if (v) for (const s of [...sockets]) s.destroy();
    },
    quotaReads: [],
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((client) => {
    if (down || relay.upstreamPort === undefined) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: '127.0.0.1', port: relay.upstreamPort });
    sockets.add(client);
    sockets.add(upstream);
    let partial = '';
    client.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('latin1')).split('\r\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (/^\S+ GETQUOTAROOT /i.test(line)) relay.quotaReads.push(Date.now());
      upstream.write(chunk);
    });
    // In order, each chunk `delayMs` after it came: a slow link, not a reordering one.
    let chain = Promise.resolve();
    upstream.on('data', (chunk: Buffer) => {
      const due = Date.now() + relay.delayMs;
      chain = chain.then(async () => {
        if (due > Date.now()) await sleep(due - Date.now());
        if (!client.destroyed) client.write(chunk);
      });
    });
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('close', closeBoth);
      s.on('error', closeBoth);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return Object.assign(relay, { port: (server.address() as AddressInfo).port });
}

/** One logged sweep: when it ran (epoch ms) and what it read. */
interface Sweep extends SweepResult {
  readonly start: number;
  readonly end: number;
  readonly job: string;
  readonly attempt: number;
}

interface LogLine {
  readonly msg: string;
  readonly time: string;
  readonly job?: string;
  readonly attempt?: number;
  readonly err?: string;
}

describe('the quota sweep queue: one sweep per period for all processes, retried when it fails', { timeout: 300_000 }, () => {
  let h: Harness;
  let relay: Relay;
  let sink: SmtpSink;
  let redis: Redis;
  let queue: Queue<QuotaSweepJob, SweepResult>;
  const services: Service[] = [];

  const lines = (msg: string): LogLine[] => h.logLines.filter((l) => l.includes(`"msg":"${msg}`)).map((l) => JSON.parse(l) as LogLine);
  const sweeps = (): Sweep[] =>
    h.logLines.filter((l) => l.includes('"msg":"quota sweep done"')).map((l) => {
      const o = JSON.parse(l) as LogLine & SweepResult & { ms: number; job: string; attempt: number };
      const end = Date.parse(o.time);
      return { start: end - o.ms, end, job: o.job, attempt: o.attempt, accounts: o.accounts, read: o.read, unreadable: o.unreadable, failed: o.failed };
    });
  /** Sweeps in start order; each starts only after the one before it ended. */
  const assertOneAtATime = (list: readonly Sweep[]): void => {
    const sorted = [...list].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) {
      // 3 ms for the rounding of `ms` and of the log's millisecond time.
      assert.ok(sorted[i]!.start >= sorted[i - 1]!.end - 3, `sweep ${sorted[i]!.job} started ${sorted[i - 1]!.end - sorted[i]!.start} ms before ${sorted[i - 1]!.job} ended`);
    }
  };
  const mails = (): ParsedMail[] => sink.received.map((r) => r.mail).filter((m) => (m.subject ?? '').includes('1000@default'));

  before(async () => {
    sink = await startSmtpSink();
    relay = await startRelay();
    h = await startHarness({
      boxes: [
        { mailbox: '1000', fullName: 'Alice Example', quotaRule: '*:messages=5' },
        { mailbox: '1001' },
        { mailbox: '1002' },
      ],
      logLevel: 'debug',
      settings: (base) => ({
        ...base,
        imap: { ...(base.imap as Record<string, unknown>), port: relay.port, idle: { maxAccounts: 0 } },
        alerts: {
          to: [ADMIN],
          from: `"vmbridge" <${FROM}>`,
          smtp: { host: '127.0.0.1', port: sink.port, secure: false, requireTLS: false },
          quotaCheckSeconds: 1,
        },
      }),
    });
    relay.upstreamPort = h.dovecot.port;
    // The user's own mail fills 1000 to 4 of 5 (80%) before vmbridge starts: no APPEND of
    // vmbridge's reads that quota, only a sweep does.
    const own = await h.mail({ context: 'default', mailbox: '1000' });
    for (let i = 0; i < 4; i++) await own.client.append('INBOX', Buffer.from(`From: friend@example.invalid\r\nSubject: hello ${i}\r\nMessage-ID: <own-${i}@example.invalid>\r\n\r\nhi\r\n`));
    redis = new Redis(h.redisUrl, { maxRetriesPerRequest: null });
    queue = new Queue<QuotaSweepJob, SweepResult>(QUEUE_QUOTA, { connection: redis, prefix: h.settings.redis.prefix });
    // Two vmbridge processes' worth of workers on one Redis.
    services.push(await h.startService(), await h.startService());
  });

  after(async () => {
    await queue?.close();
    redis?.disconnect();
    await h?.stop();
    await relay?.close();
    await sink?.close();
  });

  it('two processes sweep once per period between them, never at once, and the crossing is mailed once', async () => {
    await waitFor('the first sweep', () => sweeps().length >= 1, { timeoutMs: 20_000 });
    await waitFor('the 80% mail', () => mails().length >= 1, { timeoutMs: 20_000 });
    // Counted, not timed: both processes' workers wait for jobs, and the sweeps that ran are the
    // scheduler's, one due time per period (a scheduler per process would give two per due time).
    const from = Date.now();
    await waitFor('five more sweeps', () => sweeps().filter((s) => s.start >= from).length >= 5, { timeoutMs: 60_000, intervalMs: 100 });
    const inWindow = sweeps().filter((s) => s.start >= from).sort((a, b) => a.start - b.start);
    assert.equal(new Set(inWindow.map((s) => s.job)).size, inWindow.length, 'no sweep job ran twice');
    const due = inWindow.map((s) => Number(s.job.slice(`repeat:${QUOTA_SWEEP_SCHEDULER}:`.length)));
    for (let i = 1; i < due.length; i++) {
      const step = due[i]! - due[i - 1]!;
      assert.ok(step >= 1000 && step % 1000 === 0, `sweep jobs due ${due.join(', ')}: one per period of 1000 ms`);
    }
    const first = inWindow[0]!;
    const last = inWindow[inWindow.length - 1]!;
    const reads = relay.quotaReads.filter((t) => t >= first.start - 5 && t <= last.end + 5).length;
    process.stdout.write(`# 2 processes, quotaCheckSeconds 1: ${inWindow.length} sweeps due ${due.map((d) => d - due[0]!).join(', ')} ms apart from the first, ${reads} GETQUOTAROOT (3 accounts)\n`);
    assert.ok(reads >= 3 * (inWindow.length - 1) && reads <= 3 * (inWindow.length + 1), `${reads} GETQUOTAROOT for ${inWindow.length} sweeps`);
    for (const s of sweeps()) assert.deepEqual({ accounts: s.accounts, read: s.read, failed: s.failed }, { accounts: 3, read: 3, failed: 0 });
    assertOneAtATime(sweeps());

    assert.equal(await queue.getJobSchedulersCount(), 1, 'one scheduler for both processes');
    const scheduler = await queue.getJobScheduler(QUOTA_SWEEP_SCHEDULER);
    assert.equal(scheduler?.every, 1000);
    assert.equal(await queue.getGlobalConcurrency(), 1);
    assert.equal(await queue.getWorkersCount(), 2, 'both processes wait for sweep jobs');
    const done = await queue.getCompleted();
    assert.ok(done.length > 0 && done.every((j) => j.id?.startsWith(`repeat:${QUOTA_SWEEP_SCHEDULER}:`) && j.returnvalue.read === 3));

    assert.equal(mails().length, 1);
    assert.equal(mails()[0]!.subject, '[vmbridge] Mailbox of voicemail box 1000@default is 80% full (MESSAGE quota, threshold 80%)');
  });

  it('a sweep longer than the period holds the next one back, in every process', async () => {
    // Every answer of the server 1.5 s late: a sweep (one GETQUOTAROOT per account, all three at
    // once, on connections already open) takes one and a half periods.
    relay.delayMs = 1_500;
    const from = Date.now();
    try {
      await waitFor('three slow sweeps', () => sweeps().filter((s) => s.start >= from && s.end - s.start > 1_000).length >= 3, { timeoutMs: 30_000, intervalMs: 100 });
    } finally {
      relay.delayMs = 0;
    }
    const slow = sweeps().filter((s) => s.start >= from);
    const gaps = slow.slice(1).map((s, i) => s.start - slow[i]!.end);
    process.stdout.write(`# slow sweeps: ${slow.map((s) => `${s.end - s.start} ms`).join(', ')}; each started ${gaps.map((g) => `${g} ms`).join(', ')} after the one before ended\n`);
    assertOneAtATime(sweeps());
    await waitFor('quick sweeps again', () => sweeps().some((s) => s.start > Date.now() - 3_000 && s.end - s.start < 500), { timeoutMs: 15_000 });
    assertOneAtATime(sweeps());
    assert.equal(mails().length, 1);
  });

  it('a sweep that reaches no account fails, is retried with backoff, and is kept as failed', async () => {
    relay.setDown(true);
    let failedJob: string;
    try {
      const final = await waitFor('a sweep job failed for good', () => lines('quota sweep failed for good').at(-1), { timeoutMs: 20_000 });
      failedJob = final.job!;
    } finally {
      relay.setDown(false);
    }
    assert.match(failedJob, new RegExp(`^repeat:${QUOTA_SWEEP_SCHEDULER}:\\d+$`));
    const tries = [...lines('quota sweep failed; retried with backoff'), ...lines('quota sweep failed for good')].filter((l) => l.job === failedJob);
    assert.deepEqual(tries.map((l) => l.attempt), [1, 2, 3]);
    for (const t of tries) assert.match(t.err ?? '', /read no account: all 3 tried failed/);
    // Exponential from a quarter of the period: the second try at least 250 ms after the first,
    // the third at least 500 ms after the second.
    const at = tries.map((l) => Date.parse(l.time));
    assert.ok(at[1]! - at[0]! >= quotaSweepBackoffMs(1), `${at[1]! - at[0]!} ms`);
    assert.ok(at[2]! - at[1]! >= 2 * quotaSweepBackoffMs(1), `${at[2]! - at[1]!} ms`);
    const job = await queue.getJob(failedJob);
    assert.ok(job);
    assert.equal(await job.getState(), 'failed');
    assert.equal(job.attemptsMade, QUOTA_SWEEP_ATTEMPTS);
    assert.match(job.failedReason, /read no account/);
    assert.ok((await queue.getFailedCount()) >= 1);
  });

  it('a retry that reaches the server again completes the job', async () => {
    await waitFor('sweeps back to normal', () => sweeps().some((s) => s.start > Date.now() - 2_000), { timeoutMs: 15_000 });
    const seen = lines('quota sweep failed; retried with backoff').length;
    relay.setDown(true);
    let retried: string;
    try {
      // The first try of a job fails; the server is back before its retry (250 ms later).
      const first = await waitFor('a first try failed', () => lines('quota sweep failed; retried with backoff').slice(seen).find((l) => l.attempt === 1), { timeoutMs: 20_000, intervalMs: 10 });
      retried = first.job!;
    } finally {
      relay.setDown(false);
    }
    const done = await waitFor('the retried job done', () => sweeps().find((s) => s.job === retried), { timeoutMs: 15_000 });
    assert.ok(done.attempt >= 2, `done at try ${done.attempt}`);
    assert.equal(done.read, 3);
    const job = await queue.getJob(retried);
    assert.equal(await job?.getState(), 'completed');
    assert.equal(job?.returnvalue.read, 3);
    assert.equal(mails().length, 1, 'a retried sweep mails nothing twice');
  });

  it('close() stops a sweep after the account being read; its job waits for a retry', async () => {
    // A third process on a Redis prefix of its own (so its first sweep starts at once and only it
    // runs it), one account at a time, on a slow link.
    // Not mailing: its own prefix has its own fired thresholds, so it would mail the 80% again.
    const settings: Settings = {
      ...h.settings,
      redis: { ...h.settings.redis, prefix: `${h.settings.redis.prefix}-third` },
      sync: { ...h.settings.sync, concurrency: 1 },
      alerts: { ...h.settings.alerts, to: [] },
    };
    const own = new Redis(h.redisUrl, { maxRetriesPerRequest: null });
    const pool = new ImapPool(settings.imap, h.log);
    const reconcile = new Queue<ReconcileJob>(QUEUE_RECONCILE, { connection: own, prefix: settings.redis.prefix });
    const theirs = new Queue<QuotaSweepJob, SweepResult>(QUEUE_QUOTA, { connection: own, prefix: settings.redis.prefix });
    const directory = await loadDirectory(settings, h.log);
    relay.delayMs = 300;
    try {
      const third = startAlerts({ settings, redis: own, imap: pool, log: h.log, directory: () => directory, reconcileQueue: reconcile });
      const active = await waitFor('its sweep running', async () => (await theirs.getActive())[0], { timeoutMs: 10_000, intervalMs: 20 });
      await sleep(300); // into the first account's login
      const started = Date.now();
      await third.close();
      const closeMs = Date.now() - started;
      const job = await theirs.getJob(active.id!);
      assert.ok(job);
      assert.match(job.failedReason, /interrupted by shutdown after 1 of 3 accounts/);
      assert.equal(await job.getState(), 'delayed', 'to be retried by a process still running');
      assert.equal(job.attemptsMade, 1);
      process.stdout.write(`# close() during a sweep took ${closeMs} ms\n`);
      assert.equal(await theirs.getWorkersCount(), 0, 'its worker is gone');
    } finally {
      relay.delayMs = 0;
      await theirs.close();
      await reconcile.close();
      await pool.close();
      own.disconnect();
    }
  });

  it('setting the schedule again keeps the next sweep where it is; a new period moves it one period on', async () => {
    // A prefix of its own: a period of minutes, so nothing runs while the times are compared.
    const other = new QuotaSweepQueue(redis, `${h.settings.redis.prefix}-schedule`);
    try {
      const t0 = Date.now();
      await other.schedule(60);
      const first = await other.queue.getJobScheduler(QUOTA_SWEEP_SCHEDULER);
      assert.ok(first?.next !== undefined && first.next >= t0 + 60_000 && first.next <= Date.now() + 60_000, 'one period after it was first set');
      await sleep(50);
      await other.schedule(60); // a second process, or a restart
      await other.schedule(60);
      assert.equal((await other.queue.getJobScheduler(QUOTA_SWEEP_SCHEDULER))?.next, first.next);
      assert.equal(await other.queue.getDelayedCount(), 1, 'one sweep waiting, not one per call');
      const t1 = Date.now();
      await other.schedule(120);
      const moved = await other.queue.getJobScheduler(QUOTA_SWEEP_SCHEDULER);
      assert.equal(moved?.every, 120_000);
      assert.ok(moved.next !== undefined && moved.next >= t1 + 120_000, 'a new period starts one period from now');
      assert.equal(await other.queue.getDelayedCount(), 1);
      const [job] = await other.queue.getDelayed();
      assert.deepEqual(job?.data, { everySeconds: 120 });
      assert.equal(job?.opts.attempts, QUOTA_SWEEP_ATTEMPTS);
      await other.schedule(0);
      assert.equal(await other.queue.getJobSchedulersCount(), 0);
      assert.equal(await other.queue.getDelayedCount(), 0);
    } finally {
      await other.close();
    }
  });

  it('quotaCheckSeconds 0 removes the schedule: no sweep after it, in any process', async () => {
    const settings: Settings = { ...h.settings, alerts: { ...h.settings.alerts, quotaCheckSeconds: 0 } };
    const own = new Redis(h.redisUrl, { maxRetriesPerRequest: null });
    const pool = new ImapPool(settings.imap, h.log);
    const reconcile = new Queue<ReconcileJob>(QUEUE_RECONCILE, { connection: own, prefix: settings.redis.prefix });
    const directory = await loadDirectory(settings, h.log);
    try {
      const off = startAlerts({ settings, redis: own, imap: pool, log: h.log, directory: () => directory, reconcileQueue: reconcile });
      await off.scheduled;
      const removedAt = Date.now();
      assert.equal(await queue.getJobSchedulersCount(), 0);
      assert.equal((await queue.getDelayedCount()) + (await queue.getWaitingCount()), 0, 'no sweep left to run');
      await sleep(3_000);
      // A sweep running at the removal may still end; none starts after it.
      assert.deepEqual(sweeps().filter((s) => s.start > removedAt + 5), []);
      // sweepNow still sweeps, in this process and outside the queue.
      const now = await off.sweepNow();
      assert.equal(now.read, 3);
      await off.close();
    } finally {
      await reconcile.close();
      await pool.close();
      own.disconnect();
    }
    assert.equal(mails().length, 1, 'one mail for the one crossing, over everything above');
  });
});

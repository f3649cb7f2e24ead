/**
 * `vmbridge run`: everything in one process. Reads voicemail.conf, queues a reconcile of every
 * mailbox at start (the initial import), then keeps them in step from three triggers: the spool
 * watcher, `vmbridge notify` (externnotify) and a periodic sweep as the safety net.
 */
import { Redis } from 'ioredis';
import type { Settings } from './config/schema.js';
import { readPasswordsFile } from './config/passwords.js';
import { readVoicemailConf } from './config/voicemail-conf.js';
import type { Server } from 'node:http';
import { Metrics } from './http/metrics.js';
import { startHttpServer } from './http/server.js';
import { ImapPool } from './imap/pool.js';
import type { Logger } from './log.js';
import { ReconcileRequester } from './queue/reconcile-queue.js';
import { watchSpool, type SpoolWatcher } from './spool/watcher.js';
import type { MailboxRef } from './spool/types.js';
import { buildDirectory, type Directory } from './sync/directory.js';
import type { ReconcileResult } from './sync/reconcile.js';
import { StateStore } from './sync/state-store.js';
import { createReconcileWorker, type ReconcileWorker } from '../workers/reconcile.js';
import { startAlerts } from './alerts/start.js';

export interface ServiceOptions {
  readonly onReconciled?: (ref: MailboxRef, result: ReconcileResult, ms: number) => void;
}

export interface Service {
  readonly directory: () => Directory;
  readonly requester: ReconcileRequester;
  /** Re-reads voicemail.conf (SIGHUP). */
  reload(): Promise<void>;
  /** Queues a reconcile of every mailbox. */
  requestAll(reason: string, force?: boolean): Promise<number>;
  close(): Promise<void>;
}

export async function loadDirectory(settings: Settings, log: Logger): Promise<Directory> {
  const conf = await readVoicemailConf(settings.spool.voicemailConf);
  for (const p of conf.problems) log.warn({ file: p.file, line: p.line, problem: p.problem }, 'voicemail.conf line skipped');
  const passwords = await readPasswordsFile(settings.imap.login.passwordsFile);
  const directory = buildDirectory(conf, settings, passwords);
  for (const p of directory.problems) log.warn({ mailbox: p.mailbox, file: p.file, line: p.line, problem: p.problem }, 'voicemail.conf mailbox problem');
  return directory;
}

export async function startService(settings: Settings, log: Logger, opts: ServiceOptions = {}): Promise<Service> {
  let directory = await loadDirectory(settings, log);
  const redis = new Redis(settings.redis.url, { maxRetriesPerRequest: null, connectionName: `${settings.redis.prefix}:main` });
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection problem'));
  const state = new StateStore(redis, settings.redis.prefix);
  const imap = new ImapPool(settings.imap, log);
  const requester = new ReconcileRequester(redis, settings.redis.prefix);
  const alerts = startAlerts({ settings, redis, imap, log, directory: () => directory, reconcileQueue: requester.queue });
  const metrics = new Metrics();
  const worker: ReconcileWorker = createReconcileWorker({
    spoolDir: settings.spool.dir,
    settings,
    state,
    imap,
    log,
    redis,
    directory: () => directory,
    onReconciled: (ref, result, ms) => {
      metrics.reconciled(result.plan.ops, ms);
      opts.onReconciled?.(ref, result, ms);
    },
    onFailed: () => metrics.failed(),
    watch: alerts.watch,
  });
  let http: Server | undefined;
  if (settings.http.port > 0) {
    http = await startHttpServer({ host: settings.http.host, port: settings.http.port, redis, metrics });
    log.info({ host: settings.http.host, port: settings.http.port }, 'health and metrics on http');
  }

  const requestAll = async (reason: string, force = false): Promise<number> => {
    let queued = 0;
    for (const box of directory.boxes.values()) if (await requester.request(box.ref, reason, { force })) queued++;
    return queued;
  };

  let watcher: SpoolWatcher | undefined;
  if (settings.spool.watch) {
    watcher = watchSpool(settings.spool.dir, (ref) => {
      requester.request(ref, 'watcher').catch((err: Error) => log.warn({ err: err.message }, 'cannot queue reconcile'));
    }, { log, debounceMs: 0 }); // the .txt is written last, so its event means the message is complete; Redis coalesces bursts
  }
  const queued = await requestAll('start', true);
  log.info({ mailboxes: directory.boxes.size, queued }, 'vmbridge started');

  let sweep: NodeJS.Timeout | undefined;
  if (settings.spool.sweepSeconds > 0) {
    sweep = setInterval(() => {
      requestAll('sweep').catch((err: Error) => log.warn({ err: err.message }, 'sweep failed'));
    }, settings.spool.sweepSeconds * 1000);
    sweep.unref();
  }

  return {
    directory: () => directory,
    requester,
    requestAll,
    async reload() {
      directory = await loadDirectory(settings, log);
      log.info({ mailboxes: directory.boxes.size }, 'voicemail.conf reloaded');
      await requestAll('reload');
    },
    async close() {
      if (sweep) clearInterval(sweep);
      await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
      watcher?.close();
      await worker.close();
      await alerts.close();
      await requester.close();
      await imap.close();
      redis.disconnect();
    },
  };
}

/**
 * `vmbridge run`: everything in one process. Reads voicemail.conf, queues a reconcile of every
 * mailbox at start (the initial import), then keeps them in step from three triggers: the spool
 * watcher, `vmbridge notify` (externnotify) and a periodic sweep as the safety net.
 */
import { createRedis, describeRedisError } from './queue/redis-connection.js';
import type { Settings } from './config/schema.js';
import type { Server } from 'node:http';
import { PROBE_USER, type DovecotPushOptions } from './http/dovecot-push.js';
import { createMetrics, installationQueues, readinessChecks } from './health.js';
import { createQueueBoard } from './http/queue-board.js';
import { statusServing } from './status/serving.js';
import { StatusStore } from './status/status-store.js';
import { PushSeenRecorder, senderName } from './queue/push-seen.js';
import { startHttpServer } from './http/server.js';
import { ImapPool } from './imap/pool.js';
import type { Logger } from './log.js';
import { ReconcileRequester } from './queue/reconcile-queue.js';
import { boxOn, mailboxKey, type MailboxRef } from './spool/types.js';
import type { Directory } from './sync/directory.js';
import type { ReconcileResult } from './sync/reconcile.js';
import { QuietMarks } from './sync/quiet-marks.js';
import { folderStatusTaker } from './sync/doveadm-pass.js';
import { loadDirectory, openServers } from './service-servers.js';
import { mapLimit } from './map-limit.js';
import { ownFdBudgetProblem } from './fd-budget.js';
import { FolderStatusSnapshot } from './sync/folder-status-snapshot.js';
import { StateStore } from './sync/state-store.js';
import { createReconcileWorker, settleIfKnownQuiet, type ReconcileWorker, type ReconcileWorkerDeps } from '../workers/reconcile.js';
import { startAlerts } from './alerts/start.js';
import { MwiPublisher } from './mwi/publisher.js';
import { MwiStore } from './queue/mwi-queue.js';
import { createMwiWorkers } from '../workers/mwi.js';
import { accountKey, type ImapAccount } from './imap/account.js';
import { AccountNeedTracker, chooseIdle } from './imap/idle-choice.js';
import { IdleWatcher, type IdleChoice } from './imap/idle-watcher.js';
import { startAudio } from './audio/start.js';
import { startTranscription } from './transcribe/start.js';
import { clearStale, markStale } from './queue/stale-marks.js';
import { DeleteBreaker } from './queue/delete-breaker.js';
import { messageWaitingMailbox } from './mwi/ami-session.js';
import type { StoreWatcher } from './store/types.js';
import { ServerStores } from './store/server-stores.js';
import { MAIN_SERVER, targetServes, voicemailServers } from './config/servers.js';
import { startNotifyServer, type NotifyServer } from './notify/server.js';
import { OutcomeStore, TranscribeRequester } from './queue/transcribe-queue.js';
import { QueuedTranscriber } from './transcribe/queued.js';
import { createTranscribeWorker, type TranscribeWorker } from '../workers/transcribe.js';
import { StartupProgress } from './progress-log.js';
import { takeSweepLease } from './queue/sweep-lease.js';

export { loadDirectory } from './service-servers.js';

/** Reconcile requests in flight at once when a pass queues every mailbox. */
const REQUEST_ALL_IN_FLIGHT = 32;

export interface ServiceOptions {
  readonly onReconciled?: (ref: MailboxRef, result: ReconcileResult, ms: number) => void;
}

export interface Service {
  readonly directory: () => Directory;
  readonly requester: ReconcileRequester;
  /** Re-reads voicemail.conf and the passwords file (SIGHUP with unchanged settings). */
  reload(): Promise<void>;
  /** Queues a reconcile of every mailbox. */
  requestAll(reason: string, force?: boolean): Promise<number>;
  close(): Promise<void>;
}

/** The voicemail boxes of each IMAP account, by account key and by user name without case. */
interface BoxIndex {
  readonly byAccount: Map<string, MailboxRef[]>;
  /** Dovecot lower-cases user names by default: a push names "alice" for imapuser=Alice. */
  readonly byFoldedUser: Map<string, MailboxRef[]>;
}

function indexBoxes(directory: Directory): BoxIndex {
  const add = (map: Map<string, MailboxRef[]>, key: string, ref: MailboxRef): void => {
    const refs = map.get(key);
    if (refs) refs.push(ref);
    else map.set(key, [ref]);
  };
  const index: BoxIndex = { byAccount: new Map(), byFoldedUser: new Map() };
  for (const box of directory.boxes.values()) {
    add(index.byAccount, accountKey(box.account), box.ref);
    add(index.byFoldedUser, box.account.user.toLowerCase(), box.ref);
  }
  return index;
}

export async function startService(settings: Settings, log: Logger, opts: ServiceOptions = {}): Promise<Service> {
  let directory = await loadDirectory(settings, log);
  const audio = await startAudio(settings, [...directory.boxes.values()].map((b) => b.attachments), log);
  const transcriber = await startTranscription(settings, log);
  const fdProblem = await ownFdBudgetProblem(settings);
  if (fdProblem) log.warn({ setting: 'imap.maxConnections' }, fdProblem);
  const servers = voicemailServers(settings);
  const running = await openServers(servers, log);
  const store = new ServerStores(running.map((r) => ({ name: r.server.name, label: r.server.label, store: r.store, watch: r.server.settings.spool.watch })));
  const amis = running.flatMap((r) => (r.ami && r.server.settings.asterisk.ami ? [{ server: r.server, where: r.server.settings.asterisk.ami, session: r.ami }] : []));
  const redis = createRedis(settings.redis, 'main', { maxRetriesPerRequest: null });
  redis.on('error', (err) => log.warn({ err: describeRedisError(err, settings.redis) }, 'redis connection problem'));
  const state = new StateStore(redis, settings.redis.prefix);
  const imap = new ImapPool(settings.imap, log);
  const requester = new ReconcileRequester(redis, settings.redis.prefix);
  // What the status page shows, written by whichever process does the work (docs/http.md).
  const status = new StatusStore(redis, settings.redis.prefix);
  const statusNote = (what: string) => (err: unknown): void => log.debug({ err: err instanceof Error ? err.message : String(err) }, `${what} not recorded for the status page`);
  const alerts = startAlerts({ settings, redis, imap, log, directory: () => directory, reconcileQueue: requester.queue, onQuotaReadings: (user, readings) => status.quotaRead(user, readings) });
  const breaker = new DeleteBreaker(redis, settings.redis.prefix, settings.sync.deleteBreaker);
  const queueNames = installationQueues(settings, { transcription: transcriber !== undefined });
  const { metrics, close: closeMetrics } = createMetrics(settings, redis, imap, breaker, queueNames);
  // Transcription: its own queue and worker, so an engine holds up no reconcile (docs/transcription.md).
  const transcribeQueue = transcriber ? new TranscribeRequester(redis, settings.redis.prefix) : undefined;
  const outcomes = new OutcomeStore(redis, settings.redis.prefix);
  const queuedTranscriber = transcriber && transcribeQueue ? new QueuedTranscriber({ transcriber, requester: transcribeQueue, outcomes }) : undefined;
  // MWI: each reconcile's counts go to every mwi.targets entry, each on its own queue (docs/mwi.md).
  const mwiStore = new MwiStore(redis, settings.redis.prefix);
  const targetsByName = new Map(settings.mwi.targets.map((t) => [t.name, t]));
  const serves = (target: string, ref: MailboxRef): boolean => {
    const t = targetsByName.get(target);
    return t !== undefined && targetServes(t, ref.server ?? MAIN_SERVER);
  };
  const mwi = new MwiPublisher({ redis, prefix: settings.redis.prefix, targets: settings.mwi.targets.map((t) => t.name), serves, store: mwiStore, log, onChanged: (ref, heardAt) => status.heard(ref, heardAt).catch(statusNote('change time')) });
  const mwiWorkers = createMwiWorkers({
    settings,
    redis,
    store: mwiStore,
    log,
    requeue: (target, ref) => mwi.request(target, ref),
    onAttempt: (target, ok, ms) => metrics.published(target, ok ? 'ok' : 'failed', ms),
    onPublished: (target, ref) => void status.published(target, ref).catch(statusNote('change-to-lamp time')),
  });
  // What makes an account worth one of the IDLE connections (src/imap/idle-choice.ts).
  const need = new AccountNeedTracker();
  const accountOf = (ref: MailboxRef): string | undefined => {
    const box = directory.boxes.get(mailboxKey(ref));
    return box ? accountKey(box.account) : undefined;
  };
  const noteCounts = (ref: MailboxRef, unread: boolean): void => {
    const account = accountOf(ref);
    if (account) need.counts(account, mailboxKey(ref), unread);
  };
  const noteActivity = (ref: MailboxRef): void => {
    const account = accountOf(ref);
    if (account) need.activity(account);
  };
  // Beside Dovecot: every user's folder status in one doveadm call before each pass (docs/sync.md).
  const folderStatus = settings.imap.doveadm ? new FolderStatusSnapshot(redis, settings.redis.prefix) : undefined;
  const takeFolderStatus = folderStatus && settings.imap.doveadm ? folderStatusTaker(settings, folderStatus, log) : undefined;
  // The first pass over every mailbox logs `progress` lines while its backlog drains (docs/sync.md).
  let startup: StartupProgress | undefined;
  const reconcileDeps: ReconcileWorkerDeps = {
    store,
    settings,
    state,
    imap,
    log,
    redis,
    directory: () => directory,
    ownerName: (ref) => directory.boxes.get(mailboxKey(ref))?.owner.fullName,
    quietMarks: new QuietMarks(redis, settings.redis.prefix),
    ...(folderStatus ? { knownFolderStatus: (account: ImapAccount) => folderStatus.of(account.user) } : {}),
    onReconciled: async (ref, result, ms, heardAt) => {
      if (result.counts) noteCounts(ref, result.counts.new > 0);
      metrics.reconciled(result.plan.ops, ms);
      await status.reconciled(ref, { at: Date.now(), ms, store: result.spoolTotal, imap: result.imapTotal, applied: result.applied, counts: result.counts }).catch(statusNote('reconcile'));
      metrics.staleness(mailboxKey(ref), false);
      await clearStale(redis, settings.redis.prefix, ref);
      opts.onReconciled?.(ref, result, ms);
      startup?.reconciled(ref, result);
      await mwi.afterReconcile(ref, result, heardAt);
    },
    onFailed: (err, ref) => {
      metrics.failed();
      if (ref) status.failed(ref, err.message).catch(statusNote('failure'));
    },
    onSafetyStop: (ref) => {
      metrics.guardTripped('safety-stop');
      startup?.gaveUp(ref);
    },
    // The lamps follow the spool whatever IMAP does; the mailbox is marked stale until a reconcile finishes.
    onSpoolCounts: async (ref, counts, err, heardAt) => {
      noteCounts(ref, counts.new > 0);
      metrics.staleness(mailboxKey(ref), true);
      await markStale(redis, settings.redis.prefix, ref, err.message);
      await mwi.publish(ref, counts, heardAt);
    },
    followers: [alerts.watch],
    breaker,
    onBreakerOpened: (state, mailbox) => {
      metrics.guardTripped('delete-breaker');
      return alerts.breakerOpened(state, mailbox);
    },
    ...(audio ? { audio } : {}),
    ...(queuedTranscriber ? { transcriber: queuedTranscriber } : {}),
  };
  const worker: ReconcileWorker = createReconcileWorker(reconcileDeps);
  const transcribeWorker: TranscribeWorker | undefined = transcriber
    ? createTranscribeWorker({ ...reconcileDeps, transcriber, outcomes })
    : undefined;
  let boxes = indexBoxes(directory);
  const requestBoxes = (refs: readonly MailboxRef[], reason: string): void => {
    for (const ref of refs) noteActivity(ref);
    for (const ref of refs) requester.request(ref, reason).catch((err: Error) => log.warn({ err: err.message }, 'cannot queue reconcile'));
  };
  // Dovecot's push_notification names the user whose mail changed; every voicemail box of that
  // IMAP account is then reconciled.
  let refusedSince = 0;
  let refusedLogged = 0;
  const pushSeen = new PushSeenRecorder(redis, settings.redis.prefix);
  const pushOptions: DovecotPushOptions = {
    token: settings.http.push.token,
    onNotice: (notice, from) => {
      // The doctor's probe shows that push is taken, not that Dovecot sends it.
      if (notice.user !== PROBE_USER) pushSeen.seen(senderName(from.remoteAddress)).catch((err: Error) => log.debug({ err: err.message }, 'push not recorded as seen'));
      const refs = boxes.byFoldedUser.get(notice.user.toLowerCase());
      if (!refs) {
        metrics.push('unknown-user');
        log.debug({ user: notice.user, events: notice.events.length }, 'push for a user without a voicemail box: ignored');
        return;
      }
      metrics.push('queued');
      requestBoxes(refs, 'push');
    },
    onRefused: (status, reason) => {
      metrics.push('refused');
      // A wrong token in Dovecot's settings is refused at every mail command: log the first,
      // then at most one line a minute with how many there were.
      refusedSince++;
      if (Date.now() - refusedLogged < 60_000) return;
      log.warn({ status, reason, refused: refusedSince }, 'push from Dovecot refused; check vmbridge_push_token in dovecot.conf against http.push.tokenFile');
      refusedLogged = Date.now();
      refusedSince = 0;
    },
  };
  const requestAll = async (reason: string, force = false): Promise<number> => {
    const known = (await takeFolderStatus?.()) === true;
    const started = Date.now();
    // A request is a few Redis round trips: queued one after another, 10,000 mailboxes took half
    // a minute before the pass could begin. Beside doveadm, a mailbox its snapshot shows quiet
    // is settled here instead of queued (workers/reconcile.ts, settleIfKnownQuiet).
    const outcomes = await mapLimit([...directory.boxes.values()], REQUEST_ALL_IN_FLIGHT, async (box) => {
      if (known && (await settleIfKnownQuiet(reconcileDeps, box))) return 'settled';
      return (await requester.request(box.ref, reason, { force })) ? 'queued' : 'covered';
    });
    const queued = outcomes.filter((o) => o === 'queued').length;
    if (known) log.info({ reason, settled: outcomes.filter((o) => o === 'settled').length, queued, ms: Date.now() - started }, 'pass: mailboxes the doveadm snapshot shows quiet settled without a job');
    return queued;
  };

  let watcher: StoreWatcher | undefined;
  if (servers.some((s) => s.settings.spool.watch)) {
    watcher = store.watch((ref) => {
      noteActivity(ref);
      requester.request(ref, 'watcher').catch((err: Error) => log.warn({ err: err.message }, 'cannot queue reconcile'));
    }, { log });
  }

  const requestAccount = (account: string, reason: string): void => requestBoxes(boxes.byAccount.get(account) ?? [], reason);
  const accounts = (): ImapAccount[] => [...directory.boxes.values()].map((b) => b.account);
  // IDLE on each account's inbox folder: read, flagged, filed and deleted emails are heard at once.
  const idle = settings.imap.idle.maxAccounts > 0
    ? new IdleWatcher({ server: settings.imap, maxAccounts: settings.imap.idle.maxAccounts, log, onChange: (account) => requestAccount(account, 'idle'), limiter: imap.limiter, logins: imap.logins })
    : undefined;
  const keepMs = settings.imap.idle.keepSeconds * 1000;
  const idleChoiceNow: IdleChoice = (keys, watched, slots) => chooseIdle(keys, watched, need, { slots, keepMs });
  idle?.update(accounts(), idleChoiceNow);
  // Chosen again by need: accounts with unread voicemail, then the most recently active; a watched
  // account keeps its connection unless another is clearly ahead (src/imap/idle-choice.ts).
  const rechoose = idle ? setInterval(() => idle.update(accounts(), idleChoiceNow), settings.imap.idle.rechooseSeconds * 1000) : undefined;
  rechoose?.unref();
  for (const ami of amis) {
    ami.session.client.on('event', (event) => {
      const heard = messageWaitingMailbox(event);
      if (!heard) return;
      // Asterisk names its own mailboxes: they are on the server whose session heard it.
      const ref = boxOn(ami.server.name, heard.context, heard.mailbox);
      if (!directory.boxes.has(mailboxKey(ref))) return;
      noteActivity(ref);
      requester.request(ref, 'ami').catch((err: Error) => log.warn({ err: err.message }, 'cannot queue reconcile'));
    });
  }

  // Started once everything a request can reach exists.
  let http: Server | undefined;
  let notify: NotifyServer | undefined;
  let sweep: NodeJS.Timeout | undefined;
  const board = settings.http.port > 0 && settings.http.status.enabled ? createQueueBoard(redis, settings.redis.prefix, queueNames, { readOnly: settings.http.status.readOnly }) : undefined;
  const closeAll = async (): Promise<void> => {
    if (sweep) clearInterval(sweep);
    if (rechoose) clearInterval(rechoose);
    await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
    await board?.close();
    await notify?.close();
    watcher?.close();
    await idle?.close();
    // A reconcile in progress can wait on an IMAP server or a Redis that went away: it gets
    // sync.stopTimeoutSeconds to finish, then shutdown goes on without it (it is redone later).
    if (!(await worker.close(settings.sync.stopTimeoutSeconds * 1000))) log.warn({ timeoutSeconds: settings.sync.stopTimeoutSeconds }, 'reconcile in progress did not finish in time; closed without waiting (it is redone at the next start)');
    if (transcribeWorker && !(await transcribeWorker.close(settings.sync.stopTimeoutSeconds * 1000))) log.warn({ timeoutSeconds: settings.sync.stopTimeoutSeconds }, 'transcription in progress did not finish in time; closed without waiting (it is taken up again at the next start)');
    await transcribeQueue?.close();
    await mwiWorkers.close();
    await mwi.close();
    for (const ami of amis) await ami.session.close();
    await alerts.close();
    await requester.close();
    await closeMetrics();
    await imap.close();
    await audio?.close();
    await transcriber?.close();
    await store.close();
    redis.disconnect();
  };
  if (settings.http.port > 0) {
    const readiness = readinessChecks({ settings, redis, amis, mwiHealth: () => mwiWorkers.health() });
    try {
      http = await startHttpServer({
        host: settings.http.host,
        port: settings.http.port,
        metrics,
        readiness,
        ...(settings.http.push.enabled ? { push: pushOptions } : {}),
        ...(statusServing(settings, redis, status, () => directory, board)),
      });
    } catch (err) {
      // Nothing may keep running (or take jobs) for a service that does not start.
      await closeAll().catch(() => undefined);
      throw err;
    }
    log.info({ host: settings.http.host, port: settings.http.port }, 'health and metrics on http');
  }

  // externnotify (`vmbridge notify`): without the socket the watcher and the sweep still see every
  // change, so a socket that cannot be listened on is a warning, not a reason not to start.
  if (settings.notify.listen) {
    try {
      notify = await startNotifyServer({
        path: settings.notify.socket,
        log,
        onNotify: async (ref) => {
          if (!directory.boxes.has(mailboxKey(ref))) {
            log.debug({ mailbox: mailboxKey(ref) }, 'notify for a mailbox not in voicemail.conf: ignored');
            return 'unknown';
          }
          noteActivity(ref);
          await requester.request(ref, 'notify');
          return 'queued';
        },
      });
      log.info({ socket: notify.path }, 'externnotify socket listening');
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'vmbridge notify cannot reach this service; new voicemail waits for the spool watcher or the sweep');
    }
  }

  startup = new StartupProgress([...directory.boxes.values()].map((b) => b.ref), log);
  const queued = await requestAll('start', true);
  log.info({ mailboxes: directory.boxes.size, queued }, 'vmbridge started');

  if (settings.spool.sweepSeconds > 0) {
    const sweepMs = settings.spool.sweepSeconds * 1000;
    sweep = setInterval(() => {
      // With several processes on one Redis, one of them sweeps at each tick (docs/scale-out.md).
      takeSweepLease(redis, settings.redis.prefix, sweepMs)
        .then((mine) => (mine ? requestAll('sweep') : 0))
        .catch((err: Error) => log.warn({ err: err.message }, 'sweep failed'));
    }, sweepMs);
    sweep.unref();
  }

  return {
    directory: () => directory,
    requester,
    requestAll,
    async reload() {
      directory = await loadDirectory(settings, log);
      boxes = indexBoxes(directory);
      startup?.keepOnly([...directory.boxes.values()].map((b) => b.ref));
      need.keepOnly(new Set(accounts().map(accountKey)));
      idle?.update(accounts(), idleChoiceNow);
      log.info({ mailboxes: directory.boxes.size }, 'voicemail.conf reloaded');
      await requestAll('reload');
    },
    close: closeAll,
  };
}

/**
 * `vmbridge notify --config FILE`: the socket named by that file's notify.socket, and when no
 * service listens there, the reconcile queued straight into its Redis, as vmbridge did before it
 * had the socket. This is the slow path (settings, zod, yaml, ioredis and BullMQ are loaded); it
 * serves a service without the socket or on another host sharing Redis (docs/notify.md).
 */
import { loadSettings } from '../config/load-settings.js';
import { sendNotify } from '../notify/client.js';
import { mailboxKey, type MailboxRef } from '../spool/types.js';
import { describeOutcome, NOTIFY_TIMEOUT_MS, type NotifyIo } from './notify-cmd.js';

/** Redis that does not answer within this is given up on: Asterisk is waiting. */
const REDIS_DEADLINE_MS = 2_000;

export async function notifyWithSettings(opts: { file: string; socketArg: string | undefined; ref: MailboxRef; io: NotifyIo }): Promise<number> {
  const { ref, io } = opts;
  const { settings, warnings } = await loadSettings({ file: opts.file, env: io.env });
  for (const w of warnings) io.stderr(`vmbridge: warning: ${w}\n`);
  const path = opts.socketArg !== undefined && opts.socketArg !== '' ? opts.socketArg : settings.notify.socket;
  const outcome = await sendNotify(path, ref, NOTIFY_TIMEOUT_MS);
  if (outcome.kind !== 'unreachable') {
    const told = describeOutcome(outcome, path, ref);
    if (told.line) io.stderr(`vmbridge notify: ${told.line}\n`);
    return told.code;
  }

  // Loaded only now: when the socket answered, ioredis and BullMQ would be a third of the wait.
  const [{ createRedis }, { ReconcileRequester }] = await Promise.all([import('../queue/redis-connection.js'), import('../queue/reconcile-queue.js')]);
  const redis = createRedis(settings.redis, 'notify', {
    maxRetriesPerRequest: 1,
    connectTimeout: REDIS_DEADLINE_MS,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  const requester = new ReconcileRequester(redis, settings.redis.prefix);
  // The failure is reported once below, not as every retry's stack.
  requester.queue.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      requester.request(ref, 'notify'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${REDIS_DEADLINE_MS} ms`)), REDIS_DEADLINE_MS);
      }),
    ]);
    return 0;
  } catch (err) {
    io.stderr(`vmbridge notify: no service at ${path}, and the reconcile of ${mailboxKey(ref)} cannot be queued in Redis either (redis.url in ${opts.file}: ${err instanceof Error ? err.message : String(err)}); the spool watcher and the sweep will pick it up\n`);
    return 0;
  } finally {
    clearTimeout(timer);
    await requester.close().catch(() => undefined);
    redis.disconnect();
  }
}

/** Redis answers PING, and is a version BullMQ works with. */
import type { Redis } from 'ioredis';
import type { Settings } from '../../config/schema.js';
import { withoutPassword } from '../../config/url-password.js';
import { createRedis, describeRedisError } from '../../queue/redis-connection.js';
import { listStale } from '../../queue/stale-marks.js';
import type { CheckResult, DoctorCheck } from '../doctor.js';

const TIMEOUT_MS = 5_000;

/** The URL with any password replaced, so it can be printed. */
export function safeRedisUrl(url: string): string {
  return withoutPassword(url, '(a redis.url that is not a valid URL)');
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split('.').map((n) => Number.parseInt(n, 10));
  return a > major || (a === major && b >= minor);
}

/** A connection for one check: one attempt, no offline queue, no waiting for Redis to come back. */
export function oneShotRedis(settings: Settings): Redis {
  return createRedis(settings.redis, 'doctor', {
    lazyConnect: true,
    connectTimeout: TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
}

export const redisCheck: DoctorCheck = {
  name: 'redis',
  describes: 'Redis (redis.url) answers PING; its version and eviction policy suit the job queues',
  async run(ctx) {
    const url = ctx.settings.redis.url;
    const shown = safeRedisUrl(url);
    const section = 'redis';
    const redis = oneShotRedis(ctx.settings);
    let lastError: string | undefined;
    redis.on('error', (err: Error) => {
      lastError = describeRedisError(err, ctx.settings.redis);
    });
    try {
      await withTimeout(redis.connect(), TIMEOUT_MS + 1_000, 'connect');
      const pong = await withTimeout(redis.ping(), TIMEOUT_MS, 'PING');
      const info = await withTimeout(redis.info(), TIMEOUT_MS, 'INFO');
      const version = /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown';
      const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
      const out: CheckResult[] = [{ section, status: 'ok', message: `${shown}: PING answered ${pong}, Redis ${version}`, data: { url: shown, version, maxmemoryPolicy: policy ?? null } }];
      // BullMQ needs Redis 5 and advises 6.2 or later.
      if (version !== 'unknown' && !versionAtLeast(version, 5, 0)) out.push({ section, status: 'fail', message: `Redis ${version} is too old for the job queues (BullMQ needs 5.0 or later)` });
      else if (version !== 'unknown' && !versionAtLeast(version, 6, 2)) out.push({ section, status: 'warn', message: `Redis ${version} works, but 6.2 or later is advised for the job queues` });
      if (policy !== undefined && policy !== 'noeviction') {
        out.push({ section, status: 'warn', message: `maxmemory-policy is ${policy}: under memory pressure Redis may evict queued jobs and sync state; noeviction is advised` });
      }
      // Mailboxes whose last reconcile did not finish: their lamps follow the spool, their emails are behind.
      const stale = await withTimeout(listStale(redis, ctx.settings.redis.prefix), TIMEOUT_MS, 'stale mailboxes');
      if (stale.length > 0) {
        out.push({ section: 'mailboxes', status: 'warn', message: `${stale.length} mailbox${stale.length === 1 ? '' : 'es'} behind on the email side (lamps follow the spool): the last reconcile did not finish`, data: { stale: stale.length } });
        for (const s of stale.slice(0, 10)) out.push({ section: 'mailboxes', status: 'warn', message: `${s.mailbox} since ${s.since}: ${s.reason}` });
        if (stale.length > 10) out.push({ section: 'mailboxes', status: 'warn', message: `... and ${stale.length - 10} more` });
      }
      return out;
    } catch (err) {
      const why = lastError ?? (err instanceof Error ? err.message : String(err));
      return [{ section, status: 'fail', message: `${shown}: not reachable: ${why}`, data: { url: shown } }];
    } finally {
      redis.disconnect();
    }
  },
};

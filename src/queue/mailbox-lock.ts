/**
 * A per-mailbox lock in Redis, so that no two reconciles of one mailbox ever run at once, on any
 * host. Token-checked release and renewal (a lock that expired and was taken by another worker is
 * not touched by the first), and it expires by itself if its holder dies.
 *
 * The token names its holder (`<host>/<pid>/<random>`), so a process that finds a lock left by a
 * dead process of its own host (a crash, kill -9) clears it at once instead of waiting for the
 * expiry. Locks of other hosts are only ever left to expire.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';

const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

export class MailboxLockTimeout extends Error {}

export interface HeldLock {
  release(): Promise<void>;
}

const HOST = hostname();

function holderIsDeadHere(token: string | null): boolean {
  if (!token) return false;
  const [host, pidText] = token.split('/');
  const pid = Number(pidText);
  if (host !== HOST || !Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export async function acquireMailboxLock(
  redis: Redis,
  key: string,
  opts: { ttlMs?: number; waitMs?: number; pollMs?: number } = {},
): Promise<HeldLock> {
  const ttl = opts.ttlMs ?? 30_000;
  const deadline = Date.now() + (opts.waitMs ?? 120_000);
  const token = `${HOST}/${process.pid}/${randomUUID()}`;
  for (;;) {
    if ((await redis.set(key, token, 'PX', ttl, 'NX')) === 'OK') break;
    const holder = await redis.get(key);
    if (holderIsDeadHere(holder)) {
      await redis.eval(RELEASE, 1, key, holder as string);
      continue;
    }
    if (Date.now() > deadline) throw new MailboxLockTimeout(`${key} is still held by another reconcile (${holder ?? 'expired meanwhile'})`);
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 25));
  }
  const renew = setInterval(() => {
    redis.eval(RENEW, 1, key, token, String(ttl)).catch(() => undefined);
  }, Math.max(1000, Math.floor(ttl / 3)));
  renew.unref();
  return {
    async release() {
      clearInterval(renew);
      await redis.eval(RELEASE, 1, key, token);
    },
  };
}

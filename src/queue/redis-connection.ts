/**
 * Every Redis connection vmbridge opens (the service, `vmbridge notify`, the doctor) is made here,
 * so that each gets the same credentials and TLS: a rediss:// URL is TLS, its certificate checked
 * as redis.tls says (verified by default); redis.username/password (or passwordFile, read by the
 * settings loader) are sent with AUTH.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Settings } from '../config/schema.js';
import { certificateError, tlsConnectOptions } from '../tls.js';
import { createCluster } from './redis-cluster.js';

export type RedisSettings = Settings['redis'];

export function isTlsUrl(url: string): boolean {
  return /^rediss:\/\//i.test(url);
}

/** `Redis host:port`, for messages: the URL without its credentials. */
export function redisServerName(url: string): string {
  try {
    const u = new URL(url);
    return `Redis ${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'Redis (redis.url)';
  }
}

/** The options of a connection for `name` (it shows in CLIENT LIST as `<prefix>:<name>`). */
export function redisOptions(redis: RedisSettings, name: string): RedisOptions {
  return {
    connectionName: `${redis.prefix}:${name}`,
    ...(redis.username !== undefined ? { username: redis.username } : {}),
    ...(redis.password !== undefined ? { password: redis.password } : {}),
    ...(isTlsUrl(redis.url) ? { tls: tlsConnectOptions(redis.tls) } : {}),
  };
}

/** With redis.cluster, a Cluster seeded by redis.url (./redis-cluster.ts), typed as Redis. */
export function createRedis(redis: RedisSettings, name: string, more: RedisOptions = {}): Redis {
  const options = { ...more, ...redisOptions(redis, name) };
  return redis.cluster ? createCluster(redis.url, options) : new Redis(redis.url, options);
}

/** What to log for an error of a Redis connection: a refused certificate says what to set. */
export function describeRedisError(err: Error, redis: RedisSettings): string {
  if (!isTlsUrl(redis.url)) return err.message;
  return certificateError(err, redisServerName(redis.url), 'redis.tls', redis.tls)?.message ?? err.message;
}

/**
 * For a BullMQ Queue on a connection shared with other parts: the connection's own error listener
 * (where it is created) logs each error once. Without a listener on the queue, BullMQ prints every
 * reconnect failure to stderr as a bare error object.
 */
export function errorsLoggedByConnectionOwner(): void {
  // Nothing to do: the shared connection's owner has logged it.
}

/**
 * A Redis Cluster connection (redis.cluster): redis.url names one node, ioredis finds the others
 * from it. Every connection option of a single-node connection applies to each node's connection
 * (ClusterOptions.redisOptions), except the few that ioredis Cluster takes for itself.
 */
import { Cluster, type ClusterOptions, type Redis, type RedisOptions } from 'ioredis';

/** The seed node and any credentials written in redis.url (a standalone connection parses them itself). */
function seedOf(url: string): { host: string; port: number; username?: string; password?: string } {
  // The settings have refused a cluster URL that does not parse (config/redis-prefix.ts).
  const u = new URL(url);
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port === '' ? 6379 : Number(u.port),
    ...(u.username !== '' ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password !== '' ? { password: decodeURIComponent(u.password) } : {}),
  };
}

/**
 * `options` are those of a single-node connection (redis-connection.ts). A retry strategy, the
 * offline queue and lazy connecting belong to the cluster as a whole; the rest, including
 * maxRetriesPerRequest (null for BullMQ's workers, which read it from redisOptions of a cluster),
 * goes to each node's connection.
 */
export function createCluster(url: string, options: RedisOptions): Redis {
  const { host, port, username, password } = seedOf(url);
  const { retryStrategy, enableOfflineQueue, lazyConnect, host: _h, port: _p, path: _path, sentinels: _s, readOnly: _r, ...node } = options;
  const clusterOptions: ClusterOptions = {
    redisOptions: { ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}), ...node },
    ...(retryStrategy !== undefined ? { clusterRetryStrategy: retryStrategy } : {}),
    ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
    ...(lazyConnect !== undefined ? { lazyConnect } : {}),
  };
  const cluster = new Cluster([{ host, port }], clusterOptions);
  // The code is typed against Redis, and Cluster is not one by type: it lacks single-node members
  // (duplicate() with Redis's signature, serverInfo, condition, monitor). vmbridge uses none of
  // them; everything it calls (key commands, eval, multi, ping, info, connect, disconnect,
  // status, events) is on Cluster too, and all of src/ and workers/ typecheck with Cluster in
  // place of Redis. BullMQ tells the two apart by isCluster at run time. Keyless commands go to
  // one node: INFO describes that node, PING asks it.
  return cluster as unknown as Redis;
}

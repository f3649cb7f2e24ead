/**
 * redis.prefix and Redis Cluster. A cluster places each key by the hash of its hash tag (the text
 * between the first `{` and the next `}`), or of the whole key when there is none. BullMQ's
 * scripts, and vmbridge's own Lua and MULTI, touch several keys of one prefix at once, which a
 * cluster only allows when they share a slot: so with redis.cluster the prefix must be one hash
 * tag, which puts every key of the installation in one slot, on one node.
 */

const PLAIN = '[A-Za-z0-9_.:-]';

/** Letters, digits, `_ . : -`, with at most one non-empty `{...}` hash tag. */
export const PREFIX_PATTERN = new RegExp(`^${PLAIN}*(\\{${PLAIN}+\\})?${PLAIN}*$`);
export const PREFIX_ACCEPTED = 'letters, digits and _ . : - only, with at most one hash tag in braces (e.g. {vmbridge})';

/** The hash tag of a prefix, as Redis Cluster reads it; undefined when the whole key is hashed. */
export function hashTagOf(prefix: string): string | undefined {
  const open = prefix.indexOf('{');
  if (open < 0) return undefined;
  const close = prefix.indexOf('}', open + 1);
  // `{}` hashes the whole key, as no tag at all does.
  return close > open + 1 ? prefix.slice(open + 1, close) : undefined;
}

/** What to write instead of an untagged prefix: the same name in braces. */
export function taggedPrefix(prefix: string): string {
  return `{${prefix.replace(/[{}]/g, '') || 'vmbridge'}}`;
}

/**
 * Why redis.url cannot name a cluster's seed node, or undefined when it can: a redis:// or
 * rediss:// URL with a host and database 0 (a cluster has no other database).
 */
export function clusterUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'with redis.cluster true it must be a URL, redis://host:port or rediss://host:port, naming one node of the cluster';
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') return `with redis.cluster true it must be redis://host:port or rediss://host:port, not ${u.protocol}//`;
  if (u.hostname === '') return 'with redis.cluster true it must name a host: redis://host:port';
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && db !== '0') return `names database ${db}, but Redis Cluster has only database 0: leave the /${db} out`;
  return undefined;
}

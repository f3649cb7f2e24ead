/**
 * When to tell the administrators that a mailbox is filling up: pure decisions, no I/O.
 *
 * A resource (a quota's STORAGE or MESSAGE, or a spool folder's message count against Asterisk's
 * maxmsg) has a few levels. A level *fires* when usage reaches it and stays fired until usage
 * falls below its re-arm point, a margin under it. So a mailbox hovering around 80% sends one
 * mail, not one per reading, and sends again only after it really went down and came back up.
 *
 * Several levels crossed at once (a reading jumps from 50% to 100%) fire together but make one
 * mail, about the highest: the lower ones are implied, and an administrator should get one clear
 * message per event, not three.
 */

/** One level of one resource, in the resource's own units (bytes, messages). */
export interface Level {
  /** Stable name, kept in the fired state (e.g. `pct80`, `maxmsg`). */
  readonly id: string;
  /** Fires when usage >= fireAt. */
  readonly fireAt: number;
  /** Re-armed when usage < rearmBelow (never above fireAt). */
  readonly rearmBelow: number;
  /** What the level means to a person: a percentage of the limit. */
  readonly percent: number;
}

export interface Transition {
  /** Levels that fire now, lowest first. */
  readonly fire: readonly Level[];
  /** Ids to clear from the fired state: levels usage fell below, and levels that no longer exist. */
  readonly rearm: readonly string[];
}

export const QUOTA_LEVEL_PREFIX = 'pct';

export function quotaLevelId(threshold: number): string {
  return `${QUOTA_LEVEL_PREFIX}${threshold}`;
}

/**
 * The levels of one quota resource. Thresholds are percentages (e.g. 80, 95, 100) of `limit`;
 * a level re-arms below (threshold - margin) percent. A limit of zero or less is no limit that a
 * percentage can be taken of (servers report unlimited resources that way, or not at all).
 */
export function quotaLevels(limit: number, thresholds: readonly number[], rearmMarginPercent: number): Level[] {
  if (!(limit > 0) || !Number.isFinite(limit)) return [];
  const unique = [...new Set(thresholds)].filter((t) => t > 0).sort((a, b) => a - b);
  return unique.map((t) => ({
    id: quotaLevelId(t),
    // Multiplying before dividing keeps whole results exact (80 * 5 / 100 is 4, not 4.000000001).
    fireAt: (t * limit) / 100,
    rearmBelow: (Math.max(0, t - Math.max(0, rearmMarginPercent)) * limit) / 100,
    percent: t,
  }));
}

export const MAXMSG_LEVEL_ID = 'maxmsg';

/**
 * The one level of a spool folder against Asterisk's maxmsg: it fires `margin` messages before
 * the folder is full (Asterisk then refuses callers), and re-arms the re-arm margin (a percentage
 * of maxmsg, as for quotas) below that. maxmsg 0 is a greetings-only mailbox: nothing to warn about.
 */
export function maxmsgLevel(maxmsg: number, margin: number, rearmMarginPercent: number): Level | undefined {
  if (!(maxmsg > 0)) return undefined;
  const fireAt = Math.max(1, maxmsg - Math.max(0, margin));
  const rearmBelow = Math.max(0, fireAt - (maxmsg * Math.max(0, rearmMarginPercent)) / 100);
  return { id: MAXMSG_LEVEL_ID, fireAt, rearmBelow, percent: (fireAt * 100) / maxmsg };
}

/** What changes for one reading, given the levels fired so far. */
export function crossings(levels: readonly Level[], usage: number, fired: ReadonlySet<string>): Transition {
  const fire = levels.filter((l) => !fired.has(l.id) && usage >= l.fireAt).sort((a, b) => a.fireAt - b.fireAt);
  const rearm: string[] = [];
  for (const id of fired) {
    const level = levels.find((l) => l.id === id);
    // A level that is gone (thresholds changed, limit removed) must not stay fired forever.
    if (!level || usage < level.rearmBelow) rearm.push(id);
  }
  return { fire, rearm: rearm.sort() };
}

/**
 * Every level fired at once, nothing re-armed: the mail server refused an APPEND for quota, so
 * the mailbox is full whatever the last reading said (a message bigger than the room left, a
 * reading taken a moment earlier, a server that reports a rounded figure).
 */
export function forceFull(levels: readonly Level[], fired: ReadonlySet<string>): Transition {
  return { fire: levels.filter((l) => !fired.has(l.id)).sort((a, b) => a.fireAt - b.fireAt), rearm: [] };
}

/** The level a mail is about when several fire together: the highest. */
export function highest(levels: readonly Level[]): Level | undefined {
  let top: Level | undefined;
  for (const l of levels) if (!top || l.fireAt > top.fireAt) top = l;
  return top;
}

/** Usage as a percentage of limit (undefined without a positive limit). */
export function percentOf(usage: number, limit: number): number | undefined {
  if (!(limit > 0)) return undefined;
  return (usage * 100) / limit;
}

/**
 * The delay before the n-th retry (n from 1) of a mailbox the server refused for quota:
 * base, 2 base, 4 base ... capped at max.
 */
export function retryDelaySeconds(attempt: number, baseSeconds: number, maxSeconds: number): number {
  const n = Math.max(1, Math.floor(attempt));
  // 2^30 base is far past any sensible cap; stopping the doubling there avoids Infinity.
  const factor = 2 ** Math.min(n - 1, 30);
  return Math.min(maxSeconds, baseSeconds * factor);
}

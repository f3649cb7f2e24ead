/**
 * The file descriptors a configuration may need at once, against the process's open-file limit.
 * Every IMAP connection (command and IDLE), Redis connection, AMI session and MWI target holds
 * one, and the spool reads hold more. A budget past the soft limit fails late and far from its
 * cause (EMFILE in the middle of a reconcile), so it is reported at start, with the fix. Node
 * lifts its soft limit to the hard one as it starts, so in practice the hard limit is the bound.
 */
import { readFile } from 'node:fs/promises';
import type { Settings } from './config/schema.js';

/** Redis connections: the shared one, one per BullMQ worker (two reconcile lanes, alerts, quota, transcription) and per MWI target. */
const REDIS_BASE = 6;
/** Spool reads in flight, log and listening sockets, the odd file: room that is not counted one by one. */
const SLACK = 128;

export interface FdBudget {
  readonly total: number;
  /** What makes it up, for the message. */
  readonly parts: readonly string[];
}

export function fdBudget(settings: Settings): FdBudget {
  const imap = settings.imap.maxConnections;
  const idle = settings.imap.idle.maxAccounts;
  const targets = settings.mwi.targets.length;
  const amis = (settings.asterisk.ami ? 1 : 0) + settings.servers.filter((s) => s.asterisk.ami !== undefined).length;
  const redis = REDIS_BASE + targets;
  return {
    total: imap + idle + redis + targets + amis + SLACK,
    parts: [`imap.maxConnections ${imap}`, `imap.idle.maxAccounts ${idle}`, `Redis ${redis}`, `MWI targets ${targets}`, `AMI ${amis}`, `others ${SLACK}`],
  };
}

/** The soft and hard "Max open files" of /proc/<pid>/limits; undefined when not there (not Linux) or unlimited. */
export function parseOpenFilesLimit(text: string): { soft: number; hard: number } | undefined {
  const line = text.split('\n').find((l) => l.startsWith('Max open files'));
  const m = line ? /^Max open files\s+(\d+)\s+(\d+|unlimited)/.exec(line) : null;
  if (!m) return undefined;
  return { soft: Number(m[1]), hard: m[2] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[2]) };
}

/** The warning for a budget past the soft limit, naming what to change; undefined when it fits. */
export function fdBudgetProblem(budget: FdBudget, limit: { soft: number; hard: number }): string | undefined {
  if (budget.total <= limit.soft) return undefined;
  const want = Math.max(budget.total * 2, 4096);
  const raise = limit.hard >= budget.total
    ? `raise the soft limit (the hard one, ${limit.hard}, allows it): LimitNOFILE=${Math.min(want, limit.hard)} in the systemd unit, or ulimit -n ${Math.min(want, limit.hard)} before vmbridge run`
    : `raise the hard limit too: LimitNOFILE=${want} in the systemd unit (as root), or lower imap.maxConnections / imap.idle.maxAccounts`;
  return `the open-file limit (${limit.soft}) is below the ${budget.total} descriptors these settings may use at once (${budget.parts.join(', ')}); ${raise}`;
}

/** The problem for this process, if any (read from /proc/self/limits). */
export async function ownFdBudgetProblem(settings: Settings): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
  const limit = parseOpenFilesLimit(text);
  return limit ? fdBudgetProblem(fdBudget(settings), limit) : undefined;
}

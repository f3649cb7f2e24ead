/**
 * The flood cap: at most N alert mails in any 60 minutes, over all mailboxes. A misconfigured
 * quota (every user at 0 bytes) or a mail server outage that makes every APPEND fail must not
 * bury the administrators; what is held back is summarised in one mail once the hour has room.
 *
 * A sliding window (the send times of the last hour), not a fixed clock hour: a fixed window would
 * let 2N mails through around the turn of the hour. Pure: the Redis side only stores the times.
 */

export const FLOOD_WINDOW_MS = 60 * 60 * 1000;

export interface FloodDecision {
  /** Send this mail now. */
  readonly admit: boolean;
  /** Mails already sent inside the window (before this one). */
  readonly inWindow: number;
  /** When refused: when the oldest mail in the window leaves it, i.e. the first moment there is room. */
  readonly roomAt?: number;
}

/**
 * Decides for one mail at `now`, given the send times kept so far (any order, old ones included).
 * A cap of 0 sends nothing (every alert goes to the summary and the log).
 */
export function floodDecision(sentAt: readonly number[], now: number, cap: number, windowMs = FLOOD_WINDOW_MS): FloodDecision {
  const recent = sentAt.filter((t) => t > now - windowMs && t <= now).sort((a, b) => a - b);
  if (recent.length < cap) return { admit: true, inWindow: recent.length };
  const oldestThatMatters = recent[recent.length - cap];
  const roomAt = oldestThatMatters === undefined ? now + windowMs : oldestThatMatters + windowMs;
  return { admit: false, inWindow: recent.length, roomAt };
}

/** The summary's text lines: one per held-back alert, oldest first, at most `max` of them. */
export function summaryLines(held: readonly { readonly at: string; readonly subject: string }[], max = 200): string[] {
  const sorted = [...held].sort((a, b) => a.at.localeCompare(b.at));
  const lines = sorted.slice(0, max).map((h) => `  ${h.at}  ${h.subject}`);
  if (sorted.length > max) lines.push(`  ... and ${sorted.length - max} more (all of them are in vmbridge's log)`);
  return lines;
}

/**
 * Which accounts get an IDLE connection when there are more accounts than imap.idle.maxAccounts:
 * those a user is most likely to act on soon. An account with unread voicemail comes first (its
 * owner will listen, read or delete), then accounts by their last activity, newest first (a
 * change heard from the phone, the spool or the mail server), then the rest by name, so the
 * choice is stable while nothing changes. Pure: the service keeps the facts and asks again.
 *
 * Made again every imap.idle.rechooseSeconds, that order alone would move a connection whenever
 * two busy accounts swap places, and each move costs a logout, a login and a moment in which
 * neither account is watched. So a watched account keeps its connection unless an unwatched one
 * is clearly ahead of it (see clearlyAhead): a margin, not the order, decides a move.
 */

export interface AccountNeed {
  /** True when a mailbox of the account has unread voicemail. */
  unread(account: string): boolean;
  /** Epoch ms of the account's last activity, if any was seen. */
  lastActive(account: string): number | undefined;
}

export function idleOrder(accounts: readonly string[], need: AccountNeed): string[] {
  return [...accounts].sort((a, b) => {
    const ua = need.unread(a) ? 0 : 1;
    const ub = need.unread(b) ? 0 : 1;
    if (ua !== ub) return ua - ub;
    const la = need.lastActive(a) ?? -Infinity;
    const lb = need.lastActive(b) ?? -Infinity;
    if (la !== lb) return lb > la ? 1 : -1;
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

export interface IdleChoiceOptions {
  /** IDLE connections to give out (imap.idle.maxAccounts). */
  readonly slots: number;
  /**
   * imap.idle.keepSeconds in ms: within the same tier an unwatched account displaces a watched one
   * only if its last activity is newer by more than this.
   */
  readonly keepMs: number;
}

/**
 * Whether unwatched account `a` should take the connection of watched account `w`: it is in a
 * better tier (unread voicemail where `w` has none), or in the same tier its last activity is
 * newer than `w`'s by more than keepMs. Never by name, which only says who goes first when nothing
 * is known. A watched account that lost its unread voicemail falls to the lower tier and so gives
 * way at once to any account that has some.
 *
 * It implies that `a` ranks before `w` in idleOrder, and it holds for every account that ranks
 * before `a` and against every one that ranks after `w`; chooseIdle relies on both.
 */
export function clearlyAhead(a: string, w: string, need: AccountNeed, keepMs: number): boolean {
  const ua = need.unread(a);
  const uw = need.unread(w);
  if (ua !== uw) return ua;
  const la = need.lastActive(a) ?? -Infinity;
  const lw = need.lastActive(w) ?? -Infinity;
  return la > lw + keepMs;
}

/**
 * The accounts to watch from now on, best first: `watched` (those watched now) keep their
 * connections, free ones go by idleOrder, and then the best unwatched account takes the
 * connection of the worst watched one while it is clearly ahead of it, and so on down. Asked
 * again with the same facts it returns the same accounts, so a re-choice moves nothing unless a
 * fact changed by more than the margin.
 */
export function chooseIdle(accounts: readonly string[], watched: ReadonlySet<string>, need: AccountNeed, opts: IdleChoiceOptions): string[] {
  const slots = Math.max(0, opts.slots);
  const ranked = idleOrder(accounts, need);
  // Fewer slots than watched accounts (or accounts gone): the best-ranked of them stay.
  const chosen = new Set(ranked.filter((a) => watched.has(a)).slice(0, slots));
  for (const a of ranked) {
    if (chosen.size >= slots) break;
    chosen.add(a);
  }
  const inside = ranked.filter((a) => chosen.has(a));
  const outside = ranked.filter((a) => !chosen.has(a));
  // The i-th best outside against the i-th worst inside. An account taken in earlier ranks before
  // every later candidate, so it is never one they could be clearly ahead of: pairing the rest
  // this way finds every move, and stops at the first that is not clear.
  for (let i = 0; i < outside.length && i < inside.length; i++) {
    const candidate = outside[i]!;
    const lowest = inside[inside.length - 1 - i]!;
    if (!clearlyAhead(candidate, lowest, need, opts.keepMs)) break;
    chosen.delete(lowest);
    chosen.add(candidate);
  }
  return ranked.filter((a) => chosen.has(a));
}

/** The facts idleOrder needs, as the service learns them (in memory: a restart starts by name). */
export class AccountNeedTracker implements AccountNeed {
  private readonly unreadBoxes = new Map<string, Set<string>>();
  private readonly active = new Map<string, number>();

  /** After a reconcile (or the spool's counts): whether this mailbox of `account` has unread voicemail. */
  counts(account: string, mailbox: string, unread: boolean): void {
    const set = this.unreadBoxes.get(account) ?? new Set<string>();
    if (unread) set.add(mailbox);
    else set.delete(mailbox);
    if (set.size > 0) this.unreadBoxes.set(account, set);
    else this.unreadBoxes.delete(account);
  }

  activity(account: string, at = Date.now()): void {
    this.active.set(account, at);
  }

  unread(account: string): boolean {
    return this.unreadBoxes.has(account);
  }

  lastActive(account: string): number | undefined {
    return this.active.get(account);
  }

  /** Forget accounts no longer in use (after a reload). */
  keepOnly(accounts: ReadonlySet<string>): void {
    for (const k of [...this.unreadBoxes.keys()]) if (!accounts.has(k)) this.unreadBoxes.delete(k);
    for (const k of [...this.active.keys()]) if (!accounts.has(k)) this.active.delete(k);
  }
}

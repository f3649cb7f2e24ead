/**
 * Which accounts get an IDLE connection when there are more accounts than imap.idle.maxAccounts:
 * those a user is most likely to act on soon. An account with unread voicemail comes first (its
 * owner will listen, read or delete), then accounts by their last activity, newest first (a
 * change heard from the phone, the spool or the mail server), then the rest by name, so the
 * choice is stable while nothing changes. Pure: the service keeps the facts and asks again.
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

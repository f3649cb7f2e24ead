/** One IMAP login that holds one or more voicemail boxes. */
export interface ImapAccount {
  /** The IMAP user whose mailbox is used (for a master login, the user logged in as). */
  readonly user: string;
  /** Password for a per-user login; absent for master logins. Never logged. */
  readonly password?: string;
}

export function accountKey(a: ImapAccount): string {
  return a.user;
}

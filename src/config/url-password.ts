/** A server URL that can be printed: its password, if any, replaced by ***. */
export function withoutPassword(url: string, unreadable: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return unreadable;
  }
}

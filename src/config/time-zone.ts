/** Whether this system's Intl knows the IANA time zone name (e.g. Europe/Berlin, UTC). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * strftime for voicemail.conf's emaildateformat (default `%A, %B %d, %Y at %r`), in the mailbox's
 * time zone and locale (`locale=de_DE.UTF-8` and the like, as Asterisk's ast_strftime_locale
 * takes it). Names of days and months come from Intl in that locale; a locale the system does not
 * know falls back to English, as the C library falls back to the C locale.
 */

interface Parts {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  readonly weekday: number;
  readonly offsetMinutes: number;
  readonly zoneName: string;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(locale: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${locale}|${JSON.stringify(options)}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(locale, options);
    formatters.set(key, f);
  }
  return f;
}

/** `de_DE.UTF-8` -> `de-DE`; empty, `C` or `POSIX` -> `en-US`. */
export function bcp47(locale: string | undefined): string {
  const base = (locale ?? '').split(/[.@]/)[0]!.replace('_', '-');
  if (base === '' || base === 'C' || base === 'POSIX') return 'en-US';
  try {
    return Intl.getCanonicalLocales(base)[0] ?? 'en-US';
  } catch {
    return 'en-US';
  }
}

function partsOf(epochSeconds: number, timeZone: string): Parts {
  const date = new Date(epochSeconds * 1000);
  const p = Object.fromEntries(
    formatter('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', weekday: 'short', timeZoneName: 'short' })
      .formatToParts(date).map((x) => [x.type, x.value]),
  );
  const year = Number(p['year']);
  const month = Number(p['month']);
  const day = Number(p['day']);
  const hour = Number(p['hour']) % 24;
  const minute = Number(p['minute']);
  const second = Number(p['second']);
  const asUtc = Date.UTC(year, month - 1, day, hour, minute, second);
  const weekday = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(p['weekday'] ?? '');
  return { year, month, day, hour, minute, second, weekday, offsetMinutes: Math.round((asUtc - Math.floor(epochSeconds) * 1000) / 60_000), zoneName: p['timeZoneName'] ?? timeZone };
}

const two = (n: number): string => String(n).padStart(2, '0');

export function strftime(format: string, epochSeconds: number, timeZone: string, locale?: string): string {
  const t = partsOf(epochSeconds, timeZone);
  const loc = bcp47(locale);
  const date = new Date(epochSeconds * 1000);
  const name = (options: Intl.DateTimeFormatOptions): string => formatter(loc, { timeZone, ...options }).format(date);
  const hour12 = t.hour % 12 === 0 ? 12 : t.hour % 12;
  const ampm = t.hour < 12 ? 'AM' : 'PM';
  const yday = Math.round((Date.UTC(t.year, t.month - 1, t.day) - Date.UTC(t.year, 0, 1)) / 86_400_000) + 1;
  const offset = `${t.offsetMinutes < 0 ? '-' : '+'}${two(Math.floor(Math.abs(t.offsetMinutes) / 60))}${two(Math.abs(t.offsetMinutes) % 60)}`;
  const conv: Record<string, () => string> = {
    a: () => name({ weekday: 'short' }),
    A: () => name({ weekday: 'long' }),
    b: () => name({ month: 'short' }),
    h: () => name({ month: 'short' }),
    B: () => name({ month: 'long' }),
    d: () => two(t.day),
    e: () => String(t.day).padStart(2, ' '),
    H: () => two(t.hour),
    k: () => String(t.hour).padStart(2, ' '),
    I: () => two(hour12),
    l: () => String(hour12).padStart(2, ' '),
    m: () => two(t.month),
    M: () => two(t.minute),
    S: () => two(t.second),
    p: () => ampm,
    P: () => ampm.toLowerCase(),
    r: () => `${two(hour12)}:${two(t.minute)}:${two(t.second)} ${ampm}`,
    R: () => `${two(t.hour)}:${two(t.minute)}`,
    T: () => `${two(t.hour)}:${two(t.minute)}:${two(t.second)}`,
    D: () => `${two(t.month)}/${two(t.day)}/${two(t.year % 100)}`,
    F: () => `${t.year}-${two(t.month)}-${two(t.day)}`,
    y: () => two(t.year % 100),
    Y: () => String(t.year),
    C: () => two(Math.floor(t.year / 100)),
    j: () => String(yday).padStart(3, '0'),
    u: () => String(t.weekday === 0 ? 7 : t.weekday),
    w: () => String(t.weekday),
    z: () => offset,
    Z: () => t.zoneName,
    s: () => String(Math.floor(epochSeconds)),
    c: () => `${name({ weekday: 'short' })} ${name({ month: 'short' })} ${String(t.day).padStart(2, ' ')} ${two(t.hour)}:${two(t.minute)}:${two(t.second)} ${t.year}`,
    x: () => `${two(t.month)}/${two(t.day)}/${two(t.year % 100)}`,
    X: () => `${two(t.hour)}:${two(t.minute)}:${two(t.second)}`,
    n: () => '\n',
    t: () => '\t',
    '%': () => '%',
  };
  return format.replace(/%[-_0^#]?([a-zA-Z%])/g, (whole, c: string) => conv[c]?.() ?? whole);
}

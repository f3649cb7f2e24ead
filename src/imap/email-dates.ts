/**
 * The dates of a voicemail email, in the mailbox's time zone: the Date header as Asterisk writes
 * it, Asterisk's default emaildateformat, and the date a person reads in vmbridge's own body.
 * Intl gives the wall clock in the mailbox's zone; the words are fixed English, because RFC 5322
 * and Asterisk's emaildateformat (`%A, %B %d, %Y at %r` in the C locale) require them.
 */
import { SpoolError } from '../errors.js';
import type { SpoolMessage } from '../spool/types.js';

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const;
const MONTHS = [
  'January', 'February', 'March', 'April', 'May', 'June',
  'July', 'August', 'September', 'October', 'November', 'December',
] as const;

interface WallClock {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number; // 0-23
  minute: number;
  second: number;
  weekday: string;
  monthName: string;
  /** Minutes east of UTC. */
  offset: number;
}

const clockFormats = new Map<string, Intl.DateTimeFormat>();

function clockFormat(timeZone: string): Intl.DateTimeFormat {
  let format = clockFormats.get(timeZone);
  if (!format) {
    try {
      format = new Intl.DateTimeFormat('en-US', {
        timeZone,
        year: 'numeric', month: 'numeric', day: 'numeric',
        hour: 'numeric', minute: 'numeric', second: 'numeric', hourCycle: 'h23',
      });
    } catch (cause) {
      throw new RangeError(`time zone ${JSON.stringify(timeZone)} is not a known IANA time zone`, { cause });
    }
    clockFormats.set(timeZone, format);
  }
  return format;
}

/**
 * Offsets from UTC by zone and quarter hour. Working out a wall clock with Intl is slow (about a
 * tenth of a millisecond), and an import builds thousands of emails from a few hours of calls; every
 * zone changes its offset only on a quarter hour, so the offset of one quarter holds for all of it.
 */
const offsets = new Map<string, number>();
const OFFSETS_MAX = 10_000;
const QUARTER_HOUR = 900;

function offsetMinutes(epochSeconds: number, timeZone: string): number {
  const key = `${timeZone}\0${Math.floor(epochSeconds / QUARTER_HOUR)}`;
  let offset = offsets.get(key);
  if (offset === undefined) {
    offset = computeWallClock(epochSeconds, timeZone).offset;
    if (offsets.size >= OFFSETS_MAX) offsets.clear();
    offsets.set(key, offset);
  }
  return offset;
}

function wallClock(epochSeconds: number, timeZone: string): WallClock {
  const offset = offsetMinutes(epochSeconds, timeZone);
  const local = new Date((Math.floor(epochSeconds) + offset * 60) * 1000);
  const month = local.getUTCMonth() + 1;
  return {
    year: local.getUTCFullYear(),
    month,
    day: local.getUTCDate(),
    hour: local.getUTCHours(),
    minute: local.getUTCMinutes(),
    second: local.getUTCSeconds(),
    weekday: DAYS[local.getUTCDay()] ?? '',
    monthName: MONTHS[month - 1] ?? '',
    offset,
  };
}

function computeWallClock(epochSeconds: number, timeZone: string): WallClock {
  const ms = epochSeconds * 1000;
  const parts: Record<string, number> = {};
  for (const part of clockFormat(timeZone).formatToParts(new Date(ms))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const year = parts['year'] ?? 1970;
  const month = parts['month'] ?? 1;
  const day = parts['day'] ?? 1;
  const hour = parts['hour'] ?? 0;
  const minute = parts['minute'] ?? 0;
  const second = parts['second'] ?? 0;
  const asUtc = Date.UTC(year, month - 1, day, hour, minute, second);
  return {
    year, month, day, hour, minute, second,
    weekday: DAYS[new Date(asUtc).getUTCDay()] ?? '',
    monthName: MONTHS[month - 1] ?? '',
    offset: Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000),
  };
}

const two = (n: number): string => String(n).padStart(2, '0');

/** RFC 5322 date in the mailbox's zone, as Asterisk writes its Date header: `Sun, 22 Nov 2026 11:32:30 +0000`. */
export function rfc5322Date(epochSeconds: number, timeZone: string): string {
  const c = wallClock(epochSeconds, timeZone);
  const sign = c.offset < 0 ? '-' : '+';
  const abs = Math.abs(c.offset);
  return `${c.weekday.slice(0, 3)}, ${two(c.day)} ${c.monthName.slice(0, 3)} ${c.year} ` +
    `${two(c.hour)}:${two(c.minute)}:${two(c.second)} ${sign}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
}

/** Asterisk's default emaildateformat `%A, %B %d, %Y at %r`: `Sunday, November 22, 2026 at 11:32:30 AM`. */
export function asteriskDate(epochSeconds: number, timeZone: string): string {
  const c = wallClock(epochSeconds, timeZone);
  const hour12 = c.hour % 12 === 0 ? 12 : c.hour % 12;
  return `${c.weekday}, ${c.monthName} ${two(c.day)}, ${c.year} at ` +
    `${two(hour12)}:${two(c.minute)}:${two(c.second)} ${c.hour < 12 ? 'AM' : 'PM'}`;
}

/** The date a person reads in the body (British order, 24-hour clock, zone named): `Sunday, 22 November 2026, 11:32:30 (UTC)`. */
export function humanDate(epochSeconds: number, timeZone: string): string {
  const c = wallClock(epochSeconds, timeZone);
  return `${c.weekday}, ${c.day} ${c.monthName} ${c.year}, ${two(c.hour)}:${two(c.minute)}:${two(c.second)} (${timeZone})`;
}

/** Largest epoch second a JavaScript Date can hold. */
const MAX_EPOCH_SECONDS = 8.64e12;

/**
 * When the message was left. The envelope's origtime; failing that the time at the front of the
 * msg_id (Asterisk builds it from the same clock). Never "now": the email must not change
 * between builds.
 */
export function originTime(message: SpoolMessage): number {
  const t = message.envelope.origtime;
  if (t !== undefined && Number.isSafeInteger(t) && t >= 0 && t <= MAX_EPOCH_SECONDS) return t;
  const fromId = /^(\d{1,12})-[0-9a-fA-F]{8}$/.exec(message.envelope.msgId ?? '');
  if (fromId?.[1] !== undefined) return Number(fromId[1]);
  throw new SpoolError(message.txtPath, 'has no usable origtime (and no msg_id to take the time from), so the voicemail has no date');
}

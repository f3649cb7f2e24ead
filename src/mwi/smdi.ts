/**
 * SMDI (Simplified Message Desk Interface), the serial link older PBXs light message lamps from.
 * Pure: the bytes of a lamp message, what the switch answers, and the terminal settings a port
 * needs. The serial device itself is smdi-port.ts.
 *
 * The bytes are the ones Asterisk's res_smdi writes (smdi_toggle_mwi): `OP:MWI ` or `RMV:MWI `,
 * then `msdstrip` zeros, the station number, `!` and the byte 0x04 (EOT). No CR or LF: the switch
 * frames on the EOT. The switch answers a failure with `MWI<station> INV` (no such station) or
 * `BLK` (already so), between CR LF pairs and followed by 0x19; call-detail (`MD...`) messages
 * end the same way.
 */
import { VmbridgeError } from '../errors.js';
import type { MwiCounts } from './counts.js';

/** The longest station number SMDI carries (res_smdi SMDI_MAX_STATION_NUM_LEN). */
export const MAX_STATION_DIGITS = 10;
/** End of a message to the switch (EOT). */
export const SMDI_EOT = 0x04;
/** End of a message from the switch. */
export const SMDI_END_OF_REPLY = 0x19;

/** A station number or option that cannot go on the link; nothing was sent. */
export class SmdiValueError extends VmbridgeError {
  constructor(message: string) {
    super('SMDI_VALUE', message);
  }
}

/** The lamp shows unheard messages: on while INBOX + Urgent is not empty (Asterisk's has_voicemail). */
export function lampOn(counts: MwiCounts): boolean {
  return counts.new > 0;
}

/** Digits only, 1 to 10 of them; anything else could change the message's shape. */
export function isStation(s: string): boolean {
  return typeof s === 'string' && /^[0-9]{1,10}$/.test(s);
}

/** The number of leading digits the switch adds that Asterisk strips; 0 to 9 (res_smdi's range). */
export function isMsdstrip(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 9;
}

/**
 * The exact bytes that light (`on`) or clear the lamp of `station`. Throws SmdiValueError for a
 * station that is not 1 to 10 digits or an msdstrip outside 0..9.
 */
export function lampMessage(on: boolean, station: string, msdstrip = 0): Buffer {
  if (!isStation(station)) throw new SmdiValueError(`SMDI station ${JSON.stringify(String(station))} must be 1 to ${MAX_STATION_DIGITS} digits`);
  if (!isMsdstrip(msdstrip)) throw new SmdiValueError(`SMDI msdstrip ${String(msdstrip)} must be a whole number from 0 to 9`);
  const text = `${on ? 'OP' : 'RMV'}:MWI ${'0'.repeat(msdstrip)}${station}!`;
  return Buffer.concat([Buffer.from(text, 'latin1'), Buffer.from([SMDI_EOT])]);
}

// ------------------------------------------------------------------------------------------
// What the switch says.

export type SmdiReply =
  | { readonly kind: 'mwi-failure'; readonly station: string; readonly cause: 'INV' | 'BLK' }
  | { readonly kind: 'md' }
  | { readonly kind: 'unknown'; readonly text: string };

/** A message longer than this without its 0x19 is noise (a wrong baud rate); it is dropped. */
const MAX_REPLY_BYTES = 256;

/**
 * Splits what the switch sends into messages. Feed it chunks as they arrive; it keeps a partial
 * message for the next chunk. The top bit is dropped first: with 7-bit characters it is parity.
 */
export class SmdiReplyReader {
  private pending = '';

  constructor(private readonly msdstrip = 0) {}

  push(chunk: Uint8Array): SmdiReply[] {
    const out: SmdiReply[] = [];
    for (const byte of chunk) {
      const b = byte & 0x7f;
      if (b === SMDI_END_OF_REPLY) {
        const reply = parseReply(this.pending, this.msdstrip);
        if (reply) out.push(reply);
        this.pending = '';
        continue;
      }
      this.pending += String.fromCharCode(b);
      if (this.pending.length > MAX_REPLY_BYTES) {
        out.push({ kind: 'unknown', text: printable(this.pending) });
        this.pending = '';
      }
    }
    return out;
  }
}

/** One message from the switch, without its 0x19; undefined for an empty one. */
export function parseReply(text: string, msdstrip = 0): SmdiReply | undefined {
  const body = text.replace(/^[\r\n]+|[\r\n]+$/g, '');
  if (body === '') return undefined;
  const mwi = /^MWI([0-9]{0,16}) (INV|BLK)$/.exec(body);
  if (mwi) {
    // As res_smdi reads it: the first msdstrip digits are the switch's, not the station's.
    return { kind: 'mwi-failure', station: (mwi[1] ?? '').slice(msdstrip), cause: mwi[2] === 'INV' ? 'INV' : 'BLK' };
  }
  if (body.startsWith('MD')) return { kind: 'md' };
  return { kind: 'unknown', text: printable(body) };
}

/** The switch's text, safe for a log line. */
function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 80);
}

// ------------------------------------------------------------------------------------------
// Terminal settings.

export type SmdiBaudRate = 1200 | 2400 | 4800 | 9600;
export type SmdiParity = 'even' | 'odd' | 'none';

/** smdi.conf's line settings (res_smdi defaults: 9600 baud, 7 bits, even parity, one stop bit). */
export interface SmdiLineSettings {
  readonly baudrate: SmdiBaudRate;
  readonly charsize: 7 | 8;
  readonly parity: SmdiParity;
  readonly twoStopBits: boolean;
}

export const DEFAULT_LINE: SmdiLineSettings = { baudrate: 9600, charsize: 7, parity: 'even', twoStopBits: false };

/** The flags of `stty -a` that must read back as set for the line to be right. */
function wantedFlags(line: SmdiLineSettings): string[] {
  return [
    `cs${line.charsize}`,
    line.parity === 'none' ? '-parenb' : 'parenb',
    line.parity === 'odd' ? 'parodd' : '-parodd',
    line.twoStopBits ? 'cstopb' : '-cstopb',
  ];
}

/**
 * Arguments for `stty -F <device> ...`. `raw -echo` first (no echo of the switch's messages back
 * to it, no CR/LF translation), then the line settings, which stty applies after it.
 */
export function sttyArgs(device: string, line: SmdiLineSettings): string[] {
  return ['-F', device, 'raw', '-echo', String(line.baudrate), ...wantedFlags(line)];
}

/**
 * Which wanted settings `stty -F <device> -a` does not show. `speed` when the baud rate did not
 * take; flag names (`cs7`, `parenb`...) for the rest. A pseudo-terminal, for one, keeps no parity
 * or character size (Linux always reports cs8 -parenb for it).
 */
export function missingLineSettings(line: SmdiLineSettings, sttyAll: string): string[] {
  const words = new Set(sttyAll.split(/[\s;]+/).filter(Boolean));
  const missing: string[] = [];
  const speed = /speed (\d+) baud/.exec(sttyAll);
  if (!speed || Number(speed[1]) !== line.baudrate) missing.push('speed');
  for (const flag of [...wantedFlags(line), '-icanon', '-echo', '-opost']) if (!words.has(flag)) missing.push(flag);
  return missing;
}

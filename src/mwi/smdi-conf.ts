/**
 * Asterisk's smdi.conf, read the way res_smdi reads it (smdi_load), so one file describes the link
 * for both programs:
 * - `[interfaces]`: baudrate, charsize, paritybit, twostopbits, msdstrip and msgexpirytime apply to
 *   every `smdiport =>` line below them (settings carry on to later ports until changed);
 * - `[mailboxes]`: `smdiport=` picks the port for the mappings below it; `<station>=<mailbox>[@context]`
 *   maps a station to a mailbox (context `default` when none is given); pollinginterval.
 *
 * Where Asterisk logs a notice and falls back to a default (an unknown baud rate, a mapping before
 * any smdiport), vmbridge refuses the file with an error naming file and line: a lamp lit on the
 * wrong station, or never, is worse than a service that says why it did not start. Unknown options
 * are kept as problems (Asterisk ignores them too). Two deliberate differences: `twostopbits` is
 * applied as written (res_smdi tests the option's name instead of its value, so it always used one
 * stop bit), and `paritybit = none` clears parity (res_smdi sets every other flag instead).
 */
import { ConfigError } from '../errors.js';
import { isSafeName } from '../spool/names.js';
import { mailboxKey } from '../spool/types.js';
import { loadConfigFile, type ConfEntry, type ConfProblem, type LoadedConfig } from '../config/voicemail-conf.js';
import { DEFAULT_LINE, isMsdstrip, isStation, type SmdiBaudRate, type SmdiLineSettings } from './smdi.js';

export interface SmdiInterface {
  /** The `smdiport` value: the serial device's path. */
  readonly device: string;
  readonly line: SmdiLineSettings;
  readonly msdstrip: number;
  /** Only for call-detail messages, which vmbridge does not use; read so the file is checked whole. */
  readonly msgExpiryMs: number;
  readonly file: string;
  readonly lineNo: number;
}

export interface SmdiMapping {
  /** As written in smdi.conf, before msdstrip zeros are added. */
  readonly station: string;
  readonly mailbox: string;
  readonly context: string;
  readonly device: string;
  readonly file: string;
  readonly lineNo: number;
}

export interface SmdiConf {
  readonly file: string;
  readonly interfaces: readonly SmdiInterface[];
  readonly mappings: readonly SmdiMapping[];
  /** res_smdi polls this often; vmbridge publishes on every change instead and does not use it. */
  readonly pollingIntervalSeconds: number;
  /** Lines that were ignored (as Asterisk ignores them). */
  readonly problems: readonly ConfProblem[];
}

/** What one SMDI target drives: one port and the stations mapped on it. */
export interface SmdiPlan {
  readonly device: string;
  readonly line: SmdiLineSettings;
  readonly msdstrip: number;
  /** `mailbox@context` to its stations (one mailbox may light several). */
  readonly stations: ReadonlyMap<string, readonly string[]>;
  readonly problems: readonly ConfProblem[];
}

const BAUD_RATES: readonly SmdiBaudRate[] = [1200, 2400, 4800, 9600];
/** Asterisk's ast_true / ast_false words. */
const TRUE_WORDS = new Set(['yes', 'true', 'y', 't', '1', 'on']);
const FALSE_WORDS = new Set(['no', 'false', 'n', 'f', '0', 'off']);

function fail(e: { file: string; line: number }, message: string): never {
  throw new ConfigError(`${e.file}:${e.line}: ${message}`, { file: e.file });
}

/** Reads and checks smdi.conf. Throws ConfigError naming file and line for anything unusable. */
export async function readSmdiConf(path: string): Promise<SmdiConf> {
  return interpretSmdiConf(path, await loadConfigFile(path));
}

/** The meaning of a loaded smdi.conf (pure: tests hand in a parsed text). */
export function interpretSmdiConf(file: string, loaded: LoadedConfig): SmdiConf {
  const first = loaded.problems[0];
  if (first) fail(first, first.problem);
  const problems: ConfProblem[] = [];
  const sectionEntries = (name: string): readonly ConfEntry[] => {
    const found = loaded.sections.filter((s) => !s.template && s.name.toLowerCase() === name);
    // ast_variable_browse returns the first section of that name only.
    for (const extra of found.slice(1)) problems.push({ file: extra.file, line: extra.line, problem: `a second [${name}] section; Asterisk reads only the first, and so does vmbridge` });
    return found[0]?.entries ?? [];
  };

  const interfaces: SmdiInterface[] = [];
  let line: SmdiLineSettings = DEFAULT_LINE;
  let msdstrip = 0;
  let msgExpiryMs = 30_000;
  for (const e of sectionEntries('interfaces')) {
    const key = e.name.toLowerCase();
    const value = e.value.trim();
    const at = { file: e.file, line: e.line };
    switch (key) {
      case 'baudrate': {
        const rate = BAUD_RATES.find((r) => String(r) === value);
        if (rate === undefined) fail(at, `baudrate ${JSON.stringify(value)} is not one of ${BAUD_RATES.join(', ')}`);
        line = { ...line, baudrate: rate as SmdiBaudRate };
        break;
      }
      case 'charsize':
        if (value !== '7' && value !== '8') fail(at, `charsize ${JSON.stringify(value)} is not 7 or 8`);
        line = { ...line, charsize: value === '8' ? 8 : 7 };
        break;
      case 'paritybit': {
        const p = value.toLowerCase();
        if (p !== 'even' && p !== 'odd' && p !== 'none') fail(at, `paritybit ${JSON.stringify(value)} is not even, odd or none`);
        line = { ...line, parity: p as SmdiLineSettings['parity'] };
        break;
      }
      case 'twostopbits': {
        const b = value.toLowerCase();
        if (!TRUE_WORDS.has(b) && !FALSE_WORDS.has(b)) fail(at, `twostopbits ${JSON.stringify(value)} is not yes or no`);
        line = { ...line, twoStopBits: TRUE_WORDS.has(b) };
        break;
      }
      case 'msdstrip': {
        const n = /^[0-9]+$/.test(value) ? Number(value) : NaN;
        if (!isMsdstrip(n)) fail(at, `msdstrip ${JSON.stringify(value)} is not a whole number from 0 to 9`);
        msdstrip = n;
        break;
      }
      case 'msgexpirytime': {
        if (!/^[0-9]{1,9}$/.test(value)) fail(at, `msgexpirytime ${JSON.stringify(value)} is not a number of milliseconds`);
        msgExpiryMs = Number(value);
        break;
      }
      case 'smdiport': {
        if (!value.startsWith('/')) fail(at, `smdiport ${JSON.stringify(value)} is not an absolute device path`);
        if (interfaces.some((i) => i.device === value)) fail(at, `smdiport ${value} is listed twice`);
        interfaces.push({ device: value, line, msdstrip, msgExpiryMs, file: e.file, lineNo: e.line });
        break;
      }
      default:
        problems.push({ file: e.file, line: e.line, problem: `unknown option ${JSON.stringify(e.name)} in [interfaces] is ignored (as Asterisk does)` });
    }
  }

  const mappings: SmdiMapping[] = [];
  let pollingIntervalSeconds = 10;
  let device: string | undefined;
  for (const e of sectionEntries('mailboxes')) {
    const key = e.name.toLowerCase();
    const value = e.value.trim();
    const at = { file: e.file, line: e.line };
    if (key === 'smdiport') {
      if (!interfaces.some((i) => i.device === value)) fail(at, `smdiport ${JSON.stringify(value)} is not an smdiport of [interfaces]`);
      device = value;
      continue;
    }
    if (key === 'pollinginterval') {
      if (!/^[0-9]{1,9}$/.test(value)) fail(at, `pollinginterval ${JSON.stringify(value)} is not a number of seconds`);
      pollingIntervalSeconds = Number(value);
      continue;
    }
    const station = e.name.trim();
    if (!isStation(station)) fail(at, `station ${JSON.stringify(station)} must be 1 to 10 digits`);
    if (device === undefined) fail(at, `station ${station} comes before any smdiport= line in [mailboxes] (Asterisk ignores it)`);
    const [mailbox = '', context = 'default', ...rest] = value.split('@');
    if (rest.length > 0 || !isSafeName(mailbox) || !isSafeName(context)) {
      fail(at, `station ${station}: ${JSON.stringify(value)} is not mailbox[@context] (letters, digits and . _ - + only)`);
    }
    if (mappings.some((m) => m.device === device && m.station === station)) fail(at, `station ${station} is mapped twice for ${device}`);
    mappings.push({ station, mailbox, context, device: device as string, file: e.file, lineNo: e.line });
  }
  return { file, interfaces, mappings, pollingIntervalSeconds, problems };
}

/**
 * The port a target drives (`port`, or the only smdiport of the file) and its stations. Throws
 * ConfigError naming `settingKey` or the file when the choice is unclear or lights nothing.
 */
export function planSmdiTarget(conf: SmdiConf, port: string | undefined, settingKey: string): SmdiPlan {
  let chosen: SmdiInterface | undefined;
  if (port !== undefined) {
    chosen = conf.interfaces.find((i) => i.device === port);
    if (!chosen) throw new ConfigError(`${settingKey} ${port} is not an smdiport of ${conf.file} [interfaces]`, { file: conf.file, key: settingKey });
  } else if (conf.interfaces.length === 1) {
    chosen = conf.interfaces[0];
  } else {
    const why = conf.interfaces.length === 0 ? 'has no smdiport in [interfaces]' : `has ${conf.interfaces.length} smdiport lines; set ${settingKey} to one of them`;
    throw new ConfigError(`${conf.file} ${why}`, { file: conf.file, key: settingKey });
  }
  const device = (chosen as SmdiInterface).device;
  const stations = new Map<string, string[]>();
  for (const m of conf.mappings) {
    if (m.device !== device) continue;
    const key = mailboxKey({ mailbox: m.mailbox, context: m.context });
    stations.set(key, [...(stations.get(key) ?? []), m.station]);
  }
  if (stations.size === 0) {
    throw new ConfigError(`${conf.file} maps no station to a mailbox for ${device} in [mailboxes]`, { file: conf.file, key: settingKey });
  }
  return { device, line: (chosen as SmdiInterface).line, msdstrip: (chosen as SmdiInterface).msdstrip, stations, problems: conf.problems };
}

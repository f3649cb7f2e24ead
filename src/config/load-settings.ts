/**
 * Loads the settings: a YAML file, then environment overrides, then validation with settingsSchema
 * (the one source of truth for keys, types, ranges and defaults), then secrets read from files.
 *
 * Every failure is a ConfigError that names the key (`imap.port`), where the value came from (the
 * file with line:column, or the environment variable), what was wrong and what is accepted: the
 * administrator reading it should not need to open the source.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, isMap, isScalar, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { planSmdiTarget, readSmdiConf } from '../mwi/smdi-conf.js';
import { fillImapFromVoicemailConf } from './imap-from-voicemail-conf.js';
import { DEFAULT_VOICEMAIL_CONF, settingsSchema } from './schema.js';
import { isLoopback } from './loopback.js';
import { getAt, isPlainObject } from './raw-settings.js';
import { checkReadable, readSecretFile } from './secret-file.js';
import { checkServers } from './server-checks.js';
import { checkDoveadm } from './doveadm-checks.js';
import { checkStatusPage } from './status-checks.js';
import { checkRedis, checkTls } from './tls-checks.js';
import type { Settings } from './schema.js';

export const DEFAULT_SETTINGS_FILE = '/etc/vmbridge/vmbridge.yaml';
export const ENV_PREFIX = 'VMBRIDGE_';
/** VMBRIDGE_ variables that are not settings keys. */
const NOT_SETTINGS = new Set(['VMBRIDGE_CONFIG']);

export interface LoadSettingsOptions {
  /** Settings file; when absent: $VMBRIDGE_CONFIG, then DEFAULT_SETTINGS_FILE if it exists. */
  readonly file?: string | undefined;
  /** Environment to read VMBRIDGE_* overrides from; process.env when absent. */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** The file tried when neither `file` nor VMBRIDGE_CONFIG names one (tests point it elsewhere). */
  readonly defaultFile?: string | undefined;
}

export interface LoadedSettings {
  readonly settings: Settings;
  /** The file that was read, or undefined when everything came from the environment. */
  readonly file: string | undefined;
  /** Things that work but deserve an administrator's attention; the caller logs them. */
  readonly warnings: string[];
  /** Settings taken from voicemail.conf's IMAP_STORAGE options, one line each, for the log. */
  readonly fromVoicemailConf: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// The keys, derived from the schema so a new key needs no change here.

type LeafKind = 'string' | 'number' | 'boolean' | 'enum';

export interface SettingKey {
  /** Dotted path, e.g. `imap.login.mode`. */
  readonly key: string;
  readonly path: readonly string[];
  /** Environment variable that overrides it, e.g. `VMBRIDGE_IMAP_LOGIN__MODE`. */
  readonly env: string;
  readonly kind: LeafKind;
  /** Neither optional nor defaulted: the settings are invalid without it. */
  readonly required: boolean;
  readonly optional: boolean;
  readonly defaultValue?: unknown;
  /** Human description of the values it takes, default included. */
  readonly accepted: string;
  /** Empty text is a valid value (otherwise an empty environment variable unsets the key). */
  readonly acceptsEmpty: boolean;
}

interface KeyIndex {
  readonly leaves: readonly SettingKey[];
  readonly byKey: ReadonlyMap<string, SettingKey>;
  readonly byEnv: ReadonlyMap<string, SettingKey>;
  /** Dotted path of each object ('' for the top) to the names it accepts. */
  readonly objects: ReadonlyMap<string, readonly string[]>;
}

function upperSnake(camel: string): string {
  return camel.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** `imap.tls.rejectUnauthorized` -> `VMBRIDGE_IMAP_TLS__REJECT_UNAUTHORIZED`. */
export function envNameOf(path: readonly string[]): string {
  const [section, ...rest] = path;
  // A top-level key that is itself the setting (servers): no section part.
  if (rest.length === 0) return `${ENV_PREFIX}${upperSnake(section ?? '')}`;
  return `${ENV_PREFIX}${upperSnake(section ?? '')}_${rest.map(upperSnake).join('__')}`;
}

function isUnbounded(n: number | null): n is null {
  return n === null || !Number.isFinite(n) || Math.abs(n) >= Number.MAX_SAFE_INTEGER;
}

function describe(schema: z.ZodType): { kind: LeafKind; text: string; acceptsEmpty: boolean } {
  // A list that also takes comma-separated text (z.preprocess): described by what it produces.
  if (schema instanceof z.ZodPipe) return describe(schema.out as z.ZodType);
  if (schema instanceof z.ZodArray) {
    // A list of mappings (mwi.targets) cannot be comma-separated text; it is JSON there.
    if (schema.element instanceof z.ZodObject || schema.element instanceof z.ZodDiscriminatedUnion) {
      return { kind: 'string', text: 'a list of mappings (in the environment: JSON)', acceptsEmpty: false };
    }
    const item = describe(schema.element as z.ZodType).text;
    return { kind: 'string', text: `a list, each ${item} (in the environment: comma-separated)`, acceptsEmpty: false };
  }
  if (schema instanceof z.ZodBoolean) return { kind: 'boolean', text: 'true or false', acceptsEmpty: false };
  if (schema instanceof z.ZodEnum) {
    return { kind: 'enum', text: `one of ${schema.options.map(String).join(', ')}`, acceptsEmpty: false };
  }
  if (schema instanceof z.ZodNumber) {
    const what = schema.isInt ? 'a whole number' : 'a number';
    const min = schema.minValue;
    const max = schema.maxValue;
    let range = '';
    if (!isUnbounded(min) && !isUnbounded(max)) range = ` from ${min} to ${max}`;
    else if (!isUnbounded(min)) range = ` of at least ${min}`;
    else if (!isUnbounded(max)) range = ` of at most ${max}`;
    return { kind: 'number', text: `${what}${range}`, acceptsEmpty: false };
  }
  if (schema instanceof z.ZodString) {
    const min = schema.minLength ?? 0;
    const max = schema.maxLength;
    const text = `${min > 0 ? 'non-empty text' : 'text'}${max !== null ? ` of at most ${max} characters` : ''}`;
    return { kind: 'string', text, acceptsEmpty: min === 0 };
  }
  // A new kind of leaf in the schema: still validated by zod, only described less precisely.
  return { kind: 'string', text: 'a value', acceptsEmpty: false };
}

function walk(schema: z.ZodType, path: string[], leaves: SettingKey[], objects: Map<string, string[]>): void {
  let inner = schema;
  let optional = false;
  let hasDefault = false;
  let defaultValue: unknown;
  for (;;) {
    if (inner instanceof z.ZodDefault) {
      hasDefault = true;
      defaultValue = inner.def.defaultValue;
      inner = inner.unwrap() as z.ZodType;
    } else if (inner instanceof z.ZodOptional) {
      optional = true;
      inner = inner.unwrap() as z.ZodType;
    } else break;
  }
  if (inner instanceof z.ZodObject) {
    const shape = inner.shape as Record<string, z.ZodType>;
    objects.set(path.join('.'), Object.keys(shape));
    for (const [name, child] of Object.entries(shape)) walk(child, [...path, name], leaves, objects);
    return;
  }
  const d = describe(inner);
  const suffix = hasDefault ? ` (default ${JSON.stringify(defaultValue)})` : optional ? ' (optional)' : ' (required)';
  leaves.push({
    key: path.join('.'),
    path,
    env: envNameOf(path),
    kind: d.kind,
    required: !hasDefault && !optional,
    optional: optional && !hasDefault,
    ...(hasDefault ? { defaultValue } : {}),
    accepted: `${d.text}${suffix}`,
    acceptsEmpty: d.acceptsEmpty,
  });
}

let index: KeyIndex | undefined;
function keyIndex(): KeyIndex {
  if (index) return index;
  const leaves: SettingKey[] = [];
  const objects = new Map<string, string[]>();
  walk(settingsSchema, [], leaves, objects);
  index = {
    leaves,
    byKey: new Map(leaves.map((l) => [l.key, l])),
    byEnv: new Map(leaves.map((l) => [l.env, l])),
    objects,
  };
  return index;
}

/** Every settings key with its environment variable and accepted values (for docs and tests). */
export function settingKeys(): readonly SettingKey[] {
  return keyIndex().leaves;
}

// ---------------------------------------------------------------------------------------------
// Small helpers.


/** Values of these keys never appear in messages. */
function isSecretKey(key: string): boolean {
  return /pass|secret|token/i.test(key) && !/File$/.test(key);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(up + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

/** The candidate `wrong` is most likely a typo (or a snake_case spelling) of, if any. */
function closest(wrong: string, candidates: Iterable<string>): string | undefined {
  const norm = (s: string): string => s.toLowerCase().replace(/[_-]/g, '');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = norm(c) === norm(wrong) ? 0 : editDistance(wrong.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(wrong.length / 4)) ? best : undefined;
}

function didYouMean(wrong: string, candidates: Iterable<string>): string {
  const c = closest(wrong, candidates);
  return c === undefined ? '' : ` (did you mean ${c}?)`;
}

function show(value: unknown): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** YAML `key:` with nothing after it means "not set", as most YAML-configured tools treat it. */
function dropNulls(v: unknown): unknown {
  if (!isPlainObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) if (val !== null) out[k] = dropNulls(val);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The file.

interface ParsedFile {
  readonly file: string;
  readonly data: Record<string, unknown>;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
  readonly warnings: string[];
}

async function chooseFile(opts: LoadSettingsOptions, env: NodeJS.ProcessEnv): Promise<{ file: string; text: string } | undefined> {
  const named = opts.file ? { file: opts.file, by: 'given as the settings file' } : env.VMBRIDGE_CONFIG ? { file: env.VMBRIDGE_CONFIG, by: 'named by VMBRIDGE_CONFIG' } : undefined;
  const file = named?.file ?? opts.defaultFile ?? DEFAULT_SETTINGS_FILE;
  try {
    return { file, text: await readFile(file, 'utf8') };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // Only the default location may be absent: then everything comes from the environment.
    if (!named && e.code === 'ENOENT') return undefined;
    const why = e.code === 'ENOENT' ? 'does not exist' : e.code === 'EACCES' ? 'is not readable by this user' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    throw new ConfigError(`settings file ${file} ${why}${named ? ` (${named.by})` : ''}`, { file }, { cause: err });
  }
}

function parseFile(file: string, text: string): ParsedFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  const strip = (msg: string): string => msg.replace(/ at line \d+, column \d+:[\s\S]*$/, '');
  const at = (e: { linePos?: [{ line: number; col: number }] | [{ line: number; col: number }, { line: number; col: number }] | undefined }): string =>
    e.linePos ? `${file}:${e.linePos[0].line}:${e.linePos[0].col}` : file;
  const first = doc.errors[0];
  if (first) {
    throw new ConfigError(`${at(first)}: YAML syntax error: ${strip(first.message)}`, { file }, { cause: first });
  }
  const warnings = doc.warnings.map((w) => `${at(w)}: ${strip(w.message)}`);
  const data = dropNulls(doc.toJS()) ?? {};
  if (!isPlainObject(data)) {
    const sections = keyIndex().objects.get('') ?? [];
    throw new ConfigError(`${file}: the top level must be a mapping of sections (${sections.join(', ')}), not ${Array.isArray(data) ? 'a list' : show(data)}`, { file });
  }
  return { file, data, doc, lines, warnings };
}

/** `file:line:col` of a key in the file, following the path as far as the file has it. */
function locate(parsed: ParsedFile | undefined, path: readonly PropertyKey[]): string | undefined {
  if (!parsed) return undefined;
  let node: unknown = parsed.doc.contents;
  let offset: number | undefined;
  for (const seg of path) {
    if (!isMap(node)) break;
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
    if (!pair) break;
    if (isScalar(pair.key) && pair.key.range) offset = pair.key.range[0];
    node = pair.value;
  }
  if (offset === undefined) return parsed.file;
  const pos = parsed.lines.linePos(offset);
  return `${parsed.file}:${pos.line}:${pos.col}`;
}

// ---------------------------------------------------------------------------------------------
// The environment.

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const BOOLEANS = new Map<string, boolean>([
  ['true', true], ['yes', true], ['on', true], ['1', true],
  ['false', false], ['no', false], ['off', false], ['0', false],
]);

/** A value that cannot be coerced is passed on as text, so validation reports it with the key. */
function coerce(raw: string, leaf: SettingKey): unknown {
  if (leaf.kind === 'number') return NUMBER.test(raw.trim()) ? Number(raw.trim()) : raw;
  if (leaf.kind === 'boolean') return BOOLEANS.get(raw.trim().toLowerCase()) ?? raw;
  return raw;
}

/** Applies VMBRIDGE_* overrides to `data`; returns key -> variable for the keys it set. */
function applyEnv(data: Record<string, unknown>, env: NodeJS.ProcessEnv, file: string | undefined): Map<string, string> {
  const { byEnv } = keyIndex();
  const fromEnv = new Map<string, string>();
  const unknown: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith(ENV_PREFIX) || NOT_SETTINGS.has(name)) continue;
    const raw = env[name];
    if (raw === undefined) continue;
    const leaf = byEnv.get(name);
    if (!leaf) {
      unknown.push(name);
      continue;
    }
    let node = data;
    for (const seg of leaf.path.slice(0, -1)) {
      const next = node[seg] ?? {};
      if (!isPlainObject(next)) {
        throw new ConfigError(`${name} sets ${leaf.key}, but ${leaf.path.slice(0, leaf.path.indexOf(seg) + 1).join('.')} in ${file ?? 'the settings'} is not a mapping`, { key: leaf.key, ...(file ? { file } : {}) });
      }
      node[seg] = next;
      node = next;
    }
    const last = leaf.path[leaf.path.length - 1]!;
    // An empty variable (as `KEY=` in a compose or unit file) unsets the key, unless empty text is
    // itself a meaningful value for it.
    if (raw === '' && !leaf.acceptsEmpty) delete node[last];
    else node[last] = coerce(raw, leaf);
    fromEnv.set(leaf.key, name);
  }
  if (unknown.length > 0) {
    throw new ConfigError(
      `unknown environment variable${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `${n}${didYouMean(n, byEnv.keys())}`).join(', ')}: no setting has that name. ` +
        `Settings are ${ENV_PREFIX}<SECTION>_<KEY>, with nested keys joined by __ and camelCase written as UPPER_SNAKE ` +
        `(e.g. VMBRIDGE_IMAP_HOST, VMBRIDGE_IMAP_LOGIN__MODE, VMBRIDGE_IMAP_TLS__REJECT_UNAUTHORIZED)`,
      { key: unknown[0]! },
    );
  }
  return fromEnv;
}

// ---------------------------------------------------------------------------------------------
// Validation messages.

interface Sources {
  readonly parsed: ParsedFile | undefined;
  readonly fromEnv: ReadonlyMap<string, string>;
  /** Setting path → the voicemail.conf option it was taken from. */
  readonly fromConf: ReadonlyMap<string, string>;
  readonly noFileNote: string;
}

function where(src: Sources, path: readonly PropertyKey[]): string {
  const name = src.fromEnv.get(path.join('.'));
  if (name) return `environment variable ${name}`;
  const option = src.fromConf.get(path.join('.'));
  if (option) return `voicemail.conf [general] ${option}`;
  return locate(src.parsed, path) ?? 'settings from the environment';
}

interface Problem {
  readonly key: string;
  readonly text: string;
}

function requiredProblem(src: Sources, leaf: SettingKey): Problem {
  const inFile = src.parsed ? `in ${src.parsed.file}` : `in a settings file (${src.noFileNote})`;
  // A site coming from Asterisk's IMAP storage has its server in voicemail.conf already.
  const orConf = leaf.key === 'imap.host' ? " (or imapserver= in voicemail.conf's [general], spool.voicemailConf)" : '';
  return { key: leaf.key, text: `${leaf.key} is required: set it ${inFile} or with ${leaf.env}${orConf}; accepted: ${leaf.accepted}` };
}

function problemsOf(issue: z.core.$ZodIssue, data: unknown, src: Sources): Problem[] {
  const { byKey, objects, leaves } = keyIndex();
  const path = issue.path;
  const key = path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const accepted = objects.get(key) ?? [];
    return issue.keys.map((k) => {
      const full = [...path, k].map(String).join('.');
      const scope = key ? `${key} accepts` : 'sections are';
      return { key: full, text: `${where(src, [...path, k])}: ${full}: unknown setting${didYouMean(k, accepted)} (${scope}: ${accepted.join(', ')})` };
    });
  }
  const value = getAt(data, path);
  if (value === undefined) {
    // A missing section or key: name every required key under it.
    const missing = leaves.filter((l) => l.required && (l.key === key || l.key.startsWith(`${key}.`)));
    if (missing.length > 0) return missing.map((l) => requiredProblem(src, l));
  }
  const leaf = byKey.get(key);
  const got = value === undefined ? '' : isSecretKey(key) ? ' (value not shown)' : ` (got ${show(value)})`;
  const sub = objects.get(key);
  const accepted = leaf ? `; accepted: ${leaf.accepted}` : sub ? `; accepted: a mapping of ${sub.join(', ')}` : '';
  return [{ key, text: `${where(src, path)}: ${key || '(top level)'}: ${issue.message}${got}${accepted}` }];
}

// ---------------------------------------------------------------------------------------------
// Secrets and files named by settings.

/** alerts: mail needs both recipients and a server; the SMTP password may come from a file. */
async function checkAlerts(settings: Settings, src: Sources, warnings: string[], file: string | undefined): Promise<void> {
  const { alerts } = settings;
  const at = file ? { file } : {};
  if (alerts.to.length > 0 && alerts.smtp === undefined) {
    throw new ConfigError(`alerts.to is set but alerts.smtp.host is not (${envNameOf(['alerts', 'smtp', 'host'])}): alert mails need a mail server to go through`, { key: 'alerts.smtp.host', ...at });
  }
  if (alerts.smtp !== undefined && alerts.to.length === 0) {
    warnings.push('alerts.smtp is set but alerts.to is empty: no alert mail is sent (quota crossings are only logged)');
  }
  const auth = alerts.smtp?.auth;
  if (auth?.pass !== undefined && auth.passFile !== undefined) {
    const whence = (k: string): string => where(src, k.split('.'));
    throw new ConfigError(
      `alerts.smtp.auth.pass (${whence('alerts.smtp.auth.pass')}) and alerts.smtp.auth.passFile (${whence('alerts.smtp.auth.passFile')}) are both set; set only one`,
      { key: 'alerts.smtp.auth.passFile', ...at },
    );
  }
  if (auth?.pass !== undefined && auth.passFile === undefined && !src.fromEnv.has('alerts.smtp.auth.pass')) {
    warnings.push(`alerts.smtp.auth.pass is written in ${src.parsed?.file ?? 'the settings file'}; prefer alerts.smtp.auth.passFile or ${envNameOf(['alerts', 'smtp', 'auth', 'pass'])}`);
  }
  if (auth?.passFile !== undefined) auth.pass = await readSecretFile('alerts.smtp.auth.passFile', auth.passFile, warnings);
  if (auth !== undefined && auth.pass === undefined) {
    throw new ConfigError(`alerts.smtp.auth.user is set but neither alerts.smtp.auth.passFile nor alerts.smtp.auth.pass is (${envNameOf(['alerts', 'smtp', 'auth', 'passFile'])})`, { key: 'alerts.smtp.auth.pass', ...at });
  }
  if (alerts.smtp !== undefined && !alerts.smtp.tls.rejectUnauthorized) {
    warnings.push('alerts.smtp.tls.rejectUnauthorized is false: the SMTP server certificate is not verified');
  }
  if (alerts.smtp !== undefined && !alerts.smtp.secure && !alerts.smtp.requireTLS && auth !== undefined && !isLoopback(alerts.smtp.host)) {
    warnings.push(`alerts.smtp.requireTLS is false and alerts.smtp.host ${alerts.smtp.host} is not a loopback address: the SMTP password may cross the network unencrypted`);
  }
  if (alerts.quotaRetryMaxSeconds < alerts.quotaRetrySeconds) {
    warnings.push(`alerts.quotaRetryMaxSeconds (${alerts.quotaRetryMaxSeconds}) is below alerts.quotaRetrySeconds (${alerts.quotaRetrySeconds}): every retry waits ${alerts.quotaRetryMaxSeconds} s`);
  }
}

/**
 * imap.login oauth2: exactly one of tokenFile and tokenCommand. The token is not read here: it is
 * read at every connect, so that a rotated token is used.
 */
function checkOauth2(login: Settings['imap']['login'], warnings: string[], file: string | undefined): void {
  const at = file ? { file } : {};
  const hasFile = login.tokenFile !== undefined;
  const hasCommand = login.tokenCommand !== undefined;
  if (login.mode !== 'oauth2') {
    if (hasFile || hasCommand) warnings.push(`imap.login.tokenFile/tokenCommand are set but imap.login.mode is ${login.mode}: they are not used`);
    return;
  }
  if (hasFile && hasCommand) throw new ConfigError('imap.login.tokenFile and imap.login.tokenCommand are both set; set only one', { key: 'imap.login.tokenCommand', ...at });
  if (!hasFile && !hasCommand) {
    throw new ConfigError(`imap.login.mode is oauth2 but neither imap.login.tokenFile nor imap.login.tokenCommand is set (${envNameOf(['imap', 'login', 'tokenFile'])})`, { key: 'imap.login.tokenFile', ...at });
  }
}

/** asterisk.ami: exactly one of secret and secretFile; the file is read here, once. */
async function checkAmi(settings: Settings, src: Sources, warnings: string[], file: string | undefined): Promise<void> {
  const ami = settings.asterisk.ami;
  if (ami === undefined) return;
  const at = file ? { file } : {};
  if (ami.secret !== undefined && ami.secretFile !== undefined) {
    const whence = (k: string): string => where(src, k.split('.'));
    throw new ConfigError(
      `asterisk.ami.secret (${whence('asterisk.ami.secret')}) and asterisk.ami.secretFile (${whence('asterisk.ami.secretFile')}) are both set; set only one`,
      { key: 'asterisk.ami.secretFile', ...at },
    );
  }
  if (ami.secret !== undefined && !src.fromEnv.has('asterisk.ami.secret')) {
    warnings.push(`asterisk.ami.secret is written in ${src.parsed?.file ?? 'the settings file'}; prefer asterisk.ami.secretFile or ${envNameOf(['asterisk', 'ami', 'secret'])}`);
  }
  if (ami.secretFile !== undefined) ami.secret = await readSecretFile('asterisk.ami.secretFile', ami.secretFile, warnings);
  if (ami.secret === undefined) {
    throw new ConfigError(`asterisk.ami.host is set but neither asterisk.ami.secretFile nor asterisk.ami.secret is (${envNameOf(['asterisk', 'ami', 'secretFile'])})`, { key: 'asterisk.ami.secret', ...at });
  }
  if (/[\r\n\0]/.test(ami.secret)) {
    throw new ConfigError('asterisk.ami.secret contains a line break or NUL, which AMI cannot carry', { key: 'asterisk.ami.secret', ...at });
  }
}

/** http.push: needs the listener; a token (exactly one of token and tokenFile) off loopback. */
async function checkPush(settings: Settings, src: Sources, warnings: string[], file: string | undefined): Promise<void> {
  const { http } = settings;
  const push = http.push;
  const at = file ? { file } : {};
  if (push.token !== undefined && push.tokenFile !== undefined) {
    throw new ConfigError('http.push.token and http.push.tokenFile are both set; set only one', { key: 'http.push.tokenFile', ...at });
  }
  if (!push.enabled) {
    if (push.token !== undefined || push.tokenFile !== undefined) warnings.push('http.push.token/tokenFile are set but http.push.enabled is false: they are not used');
    return;
  }
  if (http.port === 0) {
    throw new ConfigError(`http.push.enabled is true but http.port is 0 (the listener is off); set http.port (${envNameOf(['http', 'port'])})`, { key: 'http.port', ...at });
  }
  if (push.token !== undefined && !src.fromEnv.has('http.push.token')) {
    warnings.push(`http.push.token is written in ${src.parsed?.file ?? 'the settings file'}; prefer http.push.tokenFile or ${envNameOf(['http', 'push', 'token'])}`);
  }
  if (push.tokenFile !== undefined) push.token = await readSecretFile('http.push.tokenFile', push.tokenFile, warnings);
  if (push.token === undefined && !isLoopback(http.host)) {
    throw new ConfigError(
      `http.push.enabled is true and http.host ${http.host} is not a loopback address, but no token is set: anyone who reaches the port could make vmbridge poll mailboxes; set http.push.tokenFile (${envNameOf(['http', 'push', 'tokenFile'])}) and the same token in Dovecot's vmbridge_push_token`,
      { key: 'http.push.tokenFile', ...at },
    );
  }
  if (push.token !== undefined && /[\s\0]/.test(push.token)) {
    throw new ConfigError('http.push.token contains whitespace or NUL, which an HTTP header cannot carry as one word', { key: 'http.push.token', ...at });
  }
}

function collectWarnings(settings: Settings, src: Sources, warnings: string[]): void {
  const { imap, http, sync } = settings;
  if (!imap.tls.rejectUnauthorized) {
    warnings.push('imap.tls.rejectUnauthorized is false: the IMAP server certificate is not verified, so anyone on the network path can pose as the server and collect passwords; use imap.tls.caFile for a private CA instead');
  }
  if (!imap.secure && !imap.requireTls && !isLoopback(imap.host)) {
    warnings.push(`imap.requireTls is false and imap.host ${imap.host} is not a loopback address: IMAP passwords may cross the network unencrypted`);
  }
  if (imap.secure && imap.port === 143) {
    warnings.push('imap.secure is true (TLS from the first byte) but imap.port is 143, the usual STARTTLS port; use port 993, or secure: false for STARTTLS');
  }
  if (!imap.secure && imap.port === 993) {
    warnings.push('imap.secure is false (plain, then STARTTLS) but imap.port is 993, the usual implicit-TLS port; use secure: true, or port 143');
  }
  const login = imap.login;
  if (login.mode === 'per-user' && (login.masterUser !== undefined || login.masterPassword !== undefined || login.masterPasswordFile !== undefined)) {
    warnings.push('imap.login.masterUser/masterPassword are set but imap.login.mode is per-user: they are not used');
  }
  if (login.masterPassword !== undefined && login.masterPasswordFile === undefined && !src.fromEnv.has('imap.login.masterPassword')) {
    warnings.push(`imap.login.masterPassword is written in ${src.parsed?.file ?? 'the settings file'}; prefer imap.login.masterPasswordFile (a file only vmbridge can read) or ${envNameOf(['imap', 'login', 'masterPassword'])}`);
  }
  if (http.port !== 0 && !isLoopback(http.host)) {
    warnings.push(`http.host is ${http.host}: the health and metrics endpoint on port ${http.port} is reachable from the network`);
  }
  if (sync.maxDeleteShare >= 1) {
    warnings.push('sync.maxDeleteShare is 1: the safety stop against deleting a whole voicemail box is off');
  }
}

/**
 * mwi.targets: AMI targets need exactly one of secret and secretFile, SIP targets at most one of
 * password and passwordFile; files are read here, once. A SIP URI template must give a valid URI,
 * and a sips: toUri needs transport tls.
 * An SMDI target's smdi.conf must be readable and map stations on the port it drives.
 */
async function checkMwi(settings: Settings, warnings: string[], file: string | undefined): Promise<void> {
  const at = file ? { file } : {};
  for (const [i, t] of settings.mwi.targets.entries()) {
    const key = (k: string): string => `mwi.targets.${i}.${k}`;
    if (t.kind === 'sip-notify') {
      if (t.password !== undefined && t.passwordFile !== undefined) {
        throw new ConfigError(`${key('password')} and ${key('passwordFile')} (target ${t.name}) are both set; set only one`, { key: key('passwordFile'), ...at });
      }
      if (t.password !== undefined) warnings.push(`${key('password')} (target ${t.name}) is written in the settings file; prefer ${key('passwordFile')}`);
      if (t.passwordFile !== undefined) t.password = await readSecretFile(key('passwordFile'), t.passwordFile, warnings);
      if (t.password !== undefined && /[\u0000-\u001f\u007f]/.test(t.password)) {
        throw new ConfigError(`${key('passwordFile')} (target ${t.name}) holds a line break or control character`, { key: key('passwordFile'), ...at });
      }
      for (const [field, value] of [['toUri', t.toUri.replaceAll('{mailbox}', '1000').replaceAll('{context}', 'default')], ['fromUri', t.fromUri]] as const) {
        if (!/^sips?:[A-Za-z0-9_.+-]+@(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(value)) {
          throw new ConfigError(`${key(field)} (target ${t.name}) must be sip:user@host[:port] (no display name, parameters or headers); with {mailbox}=1000 and {context}=default it is ${JSON.stringify(value)}`, { key: key(field), ...at });
        }
      }
      // RFC 3261 §26.2.2: a sips: Request-URI must travel over TLS; over udp or tcp it would be a lie.
      if (/^sips:/i.test(t.toUri) && t.transport !== 'tls') {
        throw new ConfigError(`${key('toUri')} (target ${t.name}) is a sips: URI, which must travel over TLS (RFC 3261 §26.2.2), but ${key('transport')} is ${t.transport}; set ${key('transport')} to tls, or use a sip: toUri`, { key: key('transport'), ...at });
      }
      if (t.transport === 'tls' && t.port === 5060) {
        warnings.push(`${key('transport')} (target ${t.name}) is tls but ${key('port')} is 5060, the usual port of plain SIP; TLS is usually on 5061 (the default with tls)`);
      }
      if (t.transport !== 'tls' && t.port === 5061) {
        warnings.push(`${key('port')} (target ${t.name}) is 5061, the usual port of SIP over TLS, but ${key('transport')} is ${t.transport}; set ${key('transport')} to tls if the target expects TLS there`);
      }
      continue;
    }
    if (t.kind === 'smdi') {
      // Read now so a wrong smdi.conf stops the start, naming its file and line; the target
      // reads it again when it first opens the port.
      planSmdiTarget(await readSmdiConf(t.smdiConf), t.port, key('port'));
      continue;
    }
    if (t.secret !== undefined && t.secretFile !== undefined) {
      throw new ConfigError(`${key('secret')} and ${key('secretFile')} (target ${t.name}) are both set; set only one`, { key: key('secretFile'), ...at });
    }
    if (t.secret !== undefined) warnings.push(`${key('secret')} (target ${t.name}) is written in the settings file; prefer ${key('secretFile')}`);
    if (t.secretFile !== undefined) t.secret = await readSecretFile(key('secretFile'), t.secretFile, warnings);
    if (t.secret === undefined) {
      throw new ConfigError(`${key('secretFile')} (target ${t.name}): an AMI target needs secretFile or secret`, { key: key('secretFile'), ...at });
    }
    if (/[\u0000-\u001f\u007f]/.test(t.secret)) {
      throw new ConfigError(`${key('secretFile')} (target ${t.name}) holds a line break or control character, which AMI cannot carry`, { key: key('secretFile'), ...at });
    }
  }
}

// ---------------------------------------------------------------------------------------------

export async function loadSettings(opts: LoadSettingsOptions = {}): Promise<LoadedSettings> {
  const env = opts.env ?? process.env;
  const chosen = await chooseFile(opts, env);
  const parsed = chosen ? parseFile(chosen.file, chosen.text) : undefined;
  const file = parsed?.file;
  const data: Record<string, unknown> = parsed ? parsed.data : {};
  const fromEnv = applyEnv(data, env, file);
  // An IMAP_STORAGE site's server, flags, folders and master login, where vmbridge's own settings
  // leave them out (docs/migrate-from-imap-storage.md).
  const vmConfPath = getAt(data, ['spool', 'voicemailConf']);
  const fromConf = await fillImapFromVoicemailConf(data, typeof vmConfPath === 'string' && vmConfPath !== '' ? vmConfPath : DEFAULT_VOICEMAIL_CONF);
  const src: Sources = {
    parsed,
    fromEnv,
    fromConf: fromConf.filled,
    noFileNote: `none was given, VMBRIDGE_CONFIG is not set and ${opts.defaultFile ?? DEFAULT_SETTINGS_FILE} does not exist`,
  };

  const result = settingsSchema.safeParse(data);
  if (!result.success) {
    const problems = result.error.issues.flatMap((i) => problemsOf(i, data, src));
    const texts = problems.map((p) => p.text);
    const message = texts.length === 1 ? texts[0]! : `${texts.length} problems in the settings:\n  ${texts.join('\n  ')}`;
    const key = problems[0]?.key;
    throw new ConfigError(message, { ...(file ? { file } : {}), ...(key ? { key } : {}) });
  }
  const settings = result.data;
  const warnings = [...(parsed?.warnings ?? []), ...fromConf.problems];

  const login = settings.imap.login;
  if (login.masterPassword !== undefined && login.masterPasswordFile !== undefined) {
    const whence = (k: string): string => where(src, k.split('.'));
    throw new ConfigError(
      `imap.login.masterPassword (${whence('imap.login.masterPassword')}) and imap.login.masterPasswordFile (${whence('imap.login.masterPasswordFile')}) are both set; set only one`,
      { key: 'imap.login.masterPasswordFile', ...(file ? { file } : {}) },
    );
  }
  if (login.masterPasswordFile !== undefined) {
    login.masterPassword = await readSecretFile('imap.login.masterPasswordFile', login.masterPasswordFile, warnings);
  }
  if (login.mode === 'master') {
    // Caught here rather than at the first IMAP login, where it would fail for every mailbox.
    if (login.masterUser === undefined) {
      throw new ConfigError(`imap.login.mode is master but imap.login.masterUser is not set (${envNameOf(['imap', 'login', 'masterUser'])})`, { key: 'imap.login.masterUser', ...(file ? { file } : {}) });
    }
    if (login.masterPassword === undefined) {
      throw new ConfigError(
        `imap.login.mode is master but neither imap.login.masterPasswordFile nor imap.login.masterPassword is set (${envNameOf(['imap', 'login', 'masterPasswordFile'])})`,
        { key: 'imap.login.masterPassword', ...(file ? { file } : {}) },
      );
    }
  }
  checkOauth2(login, warnings, file);
  await checkAlerts(settings, src, warnings, file);
  await checkAmi(settings, src, warnings, file);
  await checkPush(settings, src, warnings, file);
  await checkStatusPage(settings, { file, passwordFromEnv: src.fromEnv.has('http.status.password'), passwordFileEnv: envNameOf(['http', 'status', 'passwordFile']) }, warnings);
  await checkMwi(settings, warnings, file);
  await checkServers(settings, warnings, file);
  await checkDoveadm(settings, warnings, file);
  await checkRedis(settings, fromEnv, file, warnings);
  await checkTls(settings, warnings);
  await checkReadable('imap.login.passwordsFile', login.passwordsFile);

  collectWarnings(settings, src, warnings);
  return { settings, file, warnings, fromVoicemailConf: fromConf.notes };
}

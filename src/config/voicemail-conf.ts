/**
 * Reads Asterisk's voicemail.conf, so that administrators keep one user list. The first half of this
 * module is the Asterisk config-file syntax (main/config.c), which msgNNNN.txt envelopes and
 * asterisk.conf share; the second half is app_voicemail's meaning of the sections (load_config,
 * append_mailbox, apply_options).
 *
 * Asterisk refuses a whole file for some mistakes (a missing #include, a line before any section).
 * vmbridge is more forgiving: every line it cannot use becomes a ConfProblem naming file and line, and
 * everything else still loads, so one typo does not stop voicemail sync for every user.
 */
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError, UnsafeNameError } from '../errors.js';
import { isSafeName } from '../spool/names.js';

// ---------------------------------------------------------------------------------------------
// Asterisk config-file syntax
// ---------------------------------------------------------------------------------------------

/** One meaningful line of an Asterisk config file, comments removed, `line` 1-based. */
export type ConfigLine =
  | { readonly kind: 'category'; readonly line: number; readonly name: string; readonly options: readonly string[] }
  | {
      readonly kind: 'variable';
      readonly line: number;
      readonly name: string;
      readonly value: string;
      /** Written with `=>` (Asterisk calls these "objects"); the meaning is the same as `=`. */
      readonly object: boolean;
      /** Written `name += value`: appends to the previous value of `name` in the same section. */
      readonly append: boolean;
    }
  | { readonly kind: 'directive'; readonly line: number; readonly directive: string; readonly argument: string }
  | {
      readonly kind: 'invalid';
      readonly line: number;
      readonly text: string;
      readonly problem: string;
      /** `no-equals`: plain text with no `=`, which is what a line break inside a value leaves behind. */
      readonly code: 'no-equals' | 'no-name' | 'bad-section' | 'bad-escape';
    };

export interface ScannedConfig {
  readonly lines: readonly ConfigLine[];
  /** Line where a `;--` block comment opened that never closed (Asterisk only warns). */
  readonly unterminatedCommentLine?: number;
}

/** C isspace(): what Asterisk's ast_strip() removes. Not JS trim(), which also eats NBSP and U+FEFF. */
const EDGE_SPACE = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;
export function stripSpace(s: string): string {
  return s.replace(EDGE_SPACE, '');
}

/**
 * Splits config text into lines and classifies them. Comment rules follow main/config.c:
 * `;` ends the line unless written `\;` (the backslash is dropped); `;--` opens a block comment that
 * nests and ends at `--;`, possibly lines later; text before `;--` and after `--;` still counts.
 * Lines end at LF only, so a CR inside a value is kept (a trailing CR is whitespace and trimmed).
 */
export function scanConfigText(text: string, opts: ScanOptions = {}): ScannedConfig {
  const lines: ConfigLine[] = [];
  let depth = 0;
  let openedAt = 0;
  for (const { lineNo, raw } of physicalLines(text, opts.escapedLineBreaks === true)) {
    let out = '';
    // Where scanning resumed: a closing `--;` must lie wholly after it, as in Asterisk.
    let regionStart = 0;
    for (let j = 0; j < raw.length; j++) {
      const ch = raw[j];
      if (ch !== ';') {
        if (depth === 0) out += ch;
        continue;
      }
      if (j > regionStart && raw[j - 1] === '\\') {
        if (depth === 0) out = `${out.slice(0, -1)};`;
        regionStart = j + 1;
        continue;
      }
      if (raw[j + 1] === '-' && raw[j + 2] === '-' && raw[j + 3] !== '-') {
        if (depth === 0) openedAt = lineNo;
        depth++;
        j += 2;
        regionStart = j + 1;
        continue;
      }
      if (depth > 0 && j >= regionStart + 2 && raw[j - 1] === '-' && raw[j - 2] === '-') {
        depth--;
        regionStart = j + 1;
        continue;
      }
      if (depth === 0) break; // a plain comment: the rest of the line is ignored
    }
    const content = stripSpace(out);
    if (content !== '') lines.push(classifyLine(content, lineNo));
  }
  return depth > 0 ? { lines, unterminatedCommentLine: openedAt } : { lines };
}

export interface ScanOptions {
  /**
   * A line feed right after an odd number of backslashes belongs to the value and does not end
   * the line. Asterisk 22 writes a control character of a caller name into msgNNNN.txt behind a
   * backslash, so a name holding CR LF spans several lines of the file; voicemail.conf has no
   * such rule.
   */
  readonly escapedLineBreaks?: boolean;
}

/** The text's lines, each with the number of the file line it starts on. */
function physicalLines(text: string, escapedLineBreaks: boolean): Array<{ lineNo: number; raw: string }> {
  const pieces = text.split('\n');
  if (!escapedLineBreaks) return pieces.map((raw, i) => ({ lineNo: i + 1, raw }));
  const out: Array<{ lineNo: number; raw: string }> = [];
  let pending: { lineNo: number; raw: string } | undefined;
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i] ?? '';
    const current: { lineNo: number; raw: string } = pending ? { lineNo: pending.lineNo, raw: `${pending.raw}\n${piece}` } : { lineNo: i + 1, raw: piece };
    if (i < pieces.length - 1 && trailingBackslashes(piece) % 2 === 1) {
      pending = current;
      continue;
    }
    pending = undefined;
    out.push(current);
  }
  if (pending) out.push(pending);
  return out;
}

function trailingBackslashes(s: string): number {
  let n = 0;
  while (n < s.length && s[s.length - 1 - n] === '\\') n++;
  return n;
}

function classifyLine(s: string, line: number): ConfigLine {
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) return { kind: 'invalid', line, text: s, problem: "no closing ']' in a section header", code: 'bad-section' };
    const name = s.slice(1, close);
    const rest = s.slice(close + 1);
    if (!rest.startsWith('(')) return { kind: 'category', line, name, options: [] };
    const end = rest.indexOf(')');
    if (end < 0) return { kind: 'invalid', line, text: s, problem: "no closing ')' after the section header", code: 'bad-section' };
    const options = rest.slice(1, end).split(',').map(stripSpace).filter((o) => o !== '');
    return { kind: 'category', line, name, options };
  }
  if (s.startsWith('#')) {
    const m = /^#([^\s]*)\s*(.*)$/s.exec(s);
    return { kind: 'directive', line, directive: (m?.[1] ?? '').toLowerCase(), argument: stripSpace(m?.[2] ?? '') };
  }
  // A leading backslash lets a name start with `[`, `#` or `=` (main/config.c "is_escaped").
  let cur = s;
  let from = 0;
  if (cur.startsWith('\\')) {
    cur = cur.slice(1);
    if (cur === '' || cur.charCodeAt(0) < 33) return { kind: 'invalid', line, text: s, problem: 'invalid escape at the start of the line', code: 'bad-escape' };
    from = 1;
  }
  const eq = cur.indexOf('=', from);
  if (eq < 0) return { kind: 'invalid', line, text: s, problem: "not a section, directive or 'name = value' line", code: 'no-equals' };
  const append = eq > from && cur[eq - 1] === '+';
  const name = stripSpace(cur.slice(0, append ? eq - 1 : eq));
  let value = cur.slice(eq + 1);
  let object = false;
  if (!append && value.startsWith('>')) {
    object = true;
    value = value.slice(1);
  }
  if (name === '') return { kind: 'invalid', line, text: s, problem: "no name before '='", code: 'no-name' };
  return { kind: 'variable', line, name, value: stripSpace(value), object, append };
}

/**
 * Asterisk reads config and envelope files as bytes; its default mail charset is ISO-8859-1, and old
 * systems wrote Latin-1 names. UTF-8 when the bytes are valid UTF-8, else ISO-8859-1 (never fails).
 */
export function decodeAsteriskText(data: Uint8Array): { text: string; encoding: 'utf-8' | 'latin1' } {
  let bytes = data;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  try {
    return { text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes), encoding: 'utf-8' };
  } catch {
    return { text: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1'), encoding: 'latin1' };
  }
}

// ---------------------------------------------------------------------------------------------
// Loading a config file with its #includes
// ---------------------------------------------------------------------------------------------

export interface ConfProblem {
  readonly file: string;
  readonly line: number;
  readonly problem: string;
}

export interface ConfEntry {
  readonly name: string;
  readonly value: string;
  readonly object: boolean;
  readonly file: string;
  readonly line: number;
}

export interface ConfSection {
  readonly name: string;
  /** `[name](!)`: a template. Asterisk hides templates from every reader; they only feed inheritance. */
  readonly template: boolean;
  readonly file: string;
  readonly line: number;
  readonly entries: readonly ConfEntry[];
}

export interface LoadedConfig {
  readonly sections: readonly ConfSection[];
  readonly problems: readonly ConfProblem[];
}

/** main/config.c MAX_INCLUDE_LEVEL. */
const MAX_INCLUDE_DEPTH = 10;

interface MutableSection {
  name: string;
  template: boolean;
  file: string;
  line: number;
  entries: ConfEntry[];
}

/**
 * Loads an Asterisk config file and everything it #includes, in order. A missing or unreadable main
 * file throws ConfigError; every other problem is collected and the rest still loads.
 */
export async function loadConfigFile(path: string): Promise<LoadedConfig> {
  const main = resolve(path);
  let data: Buffer;
  try {
    data = await readFile(main);
  } catch (err) {
    throw new ConfigError(`cannot read ${path}: ${errorText(err)}`, { file: path }, { cause: err });
  }
  const loader = new Loader(dirname(main));
  let real = main;
  try {
    real = await realpath(main);
  } catch {
    // keep the resolved path: the file was readable a moment ago
  }
  // Problems and boxes name the main file as the caller gave it, so logs match the settings.
  await loader.loadText(path, data, undefined, [real]);
  return { sections: loader.sections, problems: loader.problems };
}

class Loader {
  readonly sections: MutableSection[] = [];
  readonly problems: ConfProblem[] = [];

  /** Relative includes resolve against the main file's directory (Asterisk: its config directory). */
  constructor(private readonly baseDir: string) {}

  private problem(file: string, line: number, problem: string): void {
    this.problems.push({ file, line, problem });
  }

  /**
   * Asterisk starts an included file in the includer's current section, and the includer carries on
   * in its own section afterwards (config_text_file_load keeps `cat` local).
   */
  async loadText(file: string, data: Buffer, current: MutableSection | undefined, stack: readonly string[]): Promise<void> {
    const { lines, unterminatedCommentLine } = scanConfigText(decodeAsteriskText(data).text);
    let cat = current;
    for (const l of lines) {
      switch (l.kind) {
        case 'invalid':
          this.problem(file, l.line, `${l.problem}: ${JSON.stringify(l.text)}`);
          break;
        case 'category':
          cat = this.openSection(file, l.line, l.name, l.options);
          break;
        case 'variable':
          if (!cat) {
            this.problem(file, l.line, `${JSON.stringify(l.name)} comes before any [section]; ignored`);
          } else if (l.append) {
            appendValue(cat, { name: l.name, value: l.value, object: l.object, file, line: l.line });
          } else {
            cat.entries.push({ name: l.name, value: l.value, object: l.object, file, line: l.line });
          }
          break;
        case 'directive':
          await this.directive(file, l.line, l.directive, l.argument, cat, stack);
          break;
      }
    }
    if (unterminatedCommentLine !== undefined) {
      this.problem(file, unterminatedCommentLine, "block comment ';--' is never closed with '--;'; the rest of the file is ignored");
    }
  }

  private openSection(file: string, line: number, name: string, options: readonly string[]): MutableSection {
    const template = options.includes('!');
    const lower = name.toLowerCase();
    if (options.some((o) => o.startsWith('+'))) {
      // [name](+) adds to an existing, non-template section of that name.
      const existing = this.sections.find((s) => !s.template && s.name.toLowerCase() === lower);
      if (existing) return existing;
      this.problem(file, line, `[${name}](+) adds to a section that is not defined before it; read as a new section`);
    }
    const section: MutableSection = { name, template, file, line, entries: [] };
    for (const base of options) {
      if (base === '!' || base.startsWith('+')) continue;
      const from = this.sections.find((s) => s.name.toLowerCase() === base.toLowerCase());
      if (!from) {
        this.problem(file, line, `[${name}] inherits from [${base}], which is not defined before it`);
        continue;
      }
      section.entries.push(...from.entries);
    }
    this.sections.push(section);
    return section;
  }

  private async directive(
    file: string,
    line: number,
    directive: string,
    argument: string,
    cat: MutableSection | undefined,
    stack: readonly string[],
  ): Promise<void> {
    if (directive === 'exec') {
      // Running programs named in a config file is Asterisk's business (execincludes=yes), not ours.
      this.problem(file, line, `#exec ${argument} refused: vmbridge never runs a program named in a config file, so what it would add is not read`);
      return;
    }
    if (directive !== 'include' && directive !== 'tryinclude') {
      this.problem(file, line, `unknown directive #${directive}`);
      return;
    }
    const optional = directive === 'tryinclude';
    const target = dequote(argument);
    if (target === '') {
      this.problem(file, line, `#${directive} needs a file name`);
      return;
    }
    const pattern = isAbsolute(target) ? target : resolve(this.baseDir, target);
    let files: string[];
    if (hasGlob(basename(pattern))) {
      if (hasGlob(dirname(pattern))) {
        this.problem(file, line, `#${directive} ${JSON.stringify(target)}: wildcards are supported in the file name only`);
        return;
      }
      files = await globFiles(pattern);
      if (files.length === 0 && !optional) this.problem(file, line, `#include ${JSON.stringify(target)}: no file matches`);
    } else {
      files = [pattern];
    }
    for (const f of files) {
      const label = f === pattern && !isAbsolute(target) ? `${JSON.stringify(target)} (${f})` : JSON.stringify(f);
      await this.include(file, line, f, label, optional, cat, stack);
    }
  }

  private async include(
    from: string,
    line: number,
    target: string,
    /** How the problem names the file: as written, and where it resolved to. */
    label: string,
    optional: boolean,
    cat: MutableSection | undefined,
    stack: readonly string[],
  ): Promise<void> {
    let real: string;
    let data: Buffer;
    try {
      real = await realpath(target);
      const st = await stat(real);
      if (!st.isFile()) {
        this.problem(from, line, `#include ${label}: not a regular file`);
        return;
      }
      data = await readFile(real);
    } catch (err) {
      if (optional && isErrno(err, 'ENOENT')) return;
      this.problem(from, line, `#include ${label}: ${errorText(err)}`);
      return;
    }
    if (stack.includes(real)) {
      this.problem(from, line, `include cycle: ${[...stack, real].join(' -> ')}; not included again`);
      return;
    }
    if (stack.length > MAX_INCLUDE_DEPTH) {
      this.problem(from, line, `#include ${label}: includes nested more than ${MAX_INCLUDE_DEPTH} deep`);
      return;
    }
    await this.loadText(target, data, cat, [...stack, real]);
  }
}

function appendValue(cat: MutableSection, entry: ConfEntry): void {
  for (let i = cat.entries.length - 1; i >= 0; i--) {
    const prev = cat.entries[i];
    if (prev && prev.name === entry.name) {
      cat.entries[i] = { ...prev, value: stripSpace(prev.value + entry.value) };
      return;
    }
  }
  cat.entries.push(entry); // nothing to append to: a plain setting, as in Asterisk
}

/** `#include "f"` and `#include <f>` lose their quotes; a bare name is used as written. */
function dequote(arg: string): string {
  const first = arg[0];
  const last = arg[arg.length - 1];
  if (arg.length >= 2 && ((first === '"' && last === '"') || (first === '<' && last === '>'))) return arg.slice(1, -1);
  return arg;
}

function hasGlob(s: string): boolean {
  return s.includes('*') || s.includes('?');
}

/** `*` and `?` in the last path component, like glob(3): sorted, no hidden files unless asked for. */
async function globFiles(pattern: string): Promise<string[]> {
  const dir = dirname(pattern);
  const namePattern = basename(pattern);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const re = globToRegExp(namePattern);
  return names
    .filter((n) => re.test(n) && (!n.startsWith('.') || namePattern.startsWith('.')))
    .sort()
    .map((n) => resolve(dir, n));
}

function globToRegExp(glob: string): RegExp {
  let src = '';
  for (const ch of glob) {
    if (ch === '*') src += '.*';
    else if (ch === '?') src += '.';
    else src += ch.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
  }
  return new RegExp(`^${src}$`, 's');
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && (err as { code?: unknown }).code === code;
}

function errorText(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code?: unknown }).code === 'string') {
    const code = (err as { code: string }).code;
    if (code === 'ENOENT') return 'no such file';
    if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
    if (code === 'EISDIR') return 'is a directory';
    return code;
  }
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------------------------------------
// voicemail.conf
// ---------------------------------------------------------------------------------------------

export interface VoicemailBox {
  readonly context: string;
  readonly mailbox: string;
  /** Without the leading `-` (which only tells Asterisk the user may not change it). */
  readonly password: string;
  readonly fullName: string;
  readonly emails: readonly string[];
  readonly pager: string;
  /** The `|`-separated options, keys lower-cased, values as written. */
  readonly options: Readonly<Record<string, string>>;
  readonly file: string;
  readonly line: number;
}

export interface VoicemailConf {
  /** `[general]`, keys lower-cased (Asterisk compares option names case-insensitively). */
  readonly general: Readonly<Record<string, string>>;
  /** `[zonemessages]`: zone name as written → `<IANA tz>|<format>`. */
  readonly zonemessages: Readonly<Record<string, string>>;
  readonly boxes: readonly VoicemailBox[];
  readonly problems: readonly ConfProblem[];
}

/** Reads voicemail.conf. A missing main file throws ConfigError; other problems are listed. */
export async function readVoicemailConf(path: string): Promise<VoicemailConf> {
  const loaded = await loadConfigFile(path);
  const problems: ConfProblem[] = [...loaded.problems];
  // Templates are invisible to app_voicemail (ast_category_browse skips them).
  const sections = loaded.sections.filter((s) => !s.template);

  const general = new Map<string, string>();
  const zones = new Map<string, string>();
  for (const s of sections) {
    const lower = s.name.toLowerCase();
    // Later settings win, as ast_variable_retrieve returns the last match.
    if (lower === 'general') for (const e of s.entries) general.set(e.name.toLowerCase(), e.value);
    if (lower === 'zonemessages') for (const e of s.entries) zones.set(e.name, e.value);
  }
  const aliases = general.get('aliasescontext')?.toLowerCase();

  const boxes: VoicemailBox[] = [];
  // Per context: mailbox (lower-cased, as Asterisk's find_or_create compares) → where it was first defined.
  const seen = new Map<string, Map<string, ConfEntry>>();
  for (const s of sections) {
    const lower = s.name.toLowerCase();
    if (lower === 'general' || lower === 'zonemessages' || (aliases !== undefined && aliases !== '' && lower === aliases)) continue;
    if (!isSafeName(s.name)) {
      problems.push({ file: s.file, line: s.line, problem: `${new UnsafeNameError('context', s.name).message}; its mailboxes are skipped` });
      continue;
    }
    let inContext = seen.get(lower);
    if (!inContext) seen.set(lower, (inContext = new Map()));
    for (const e of s.entries) {
      const result = parseMailboxLine(s.name, e);
      if ('problem' in result) {
        problems.push({ file: e.file, line: e.line, problem: result.problem });
        continue;
      }
      const first = inContext.get(e.name.toLowerCase());
      if (first) {
        problems.push({
          file: e.file,
          line: e.line,
          problem: `mailbox ${e.name} in [${s.name}] is already defined at ${first.file}:${first.line}; this line is ignored, as Asterisk does`,
        });
        continue;
      }
      inContext.set(e.name.toLowerCase(), e);
      problems.push(...result.optionProblems);
      boxes.push(result.box);
    }
  }
  return { general: Object.fromEntries(general), zonemessages: Object.fromEntries(zones), boxes, problems };
}

type ParsedBox = { box: VoicemailBox; optionProblems: ConfProblem[] } | { problem: string };

/**
 * `<mailbox> => <password>,<full name>,<email>,<pager>,<options>` (append_mailbox). The first four
 * fields are split on `,`; everything after the fourth comma is the options string, split on `|` only
 * (apply_options), so `attach=yes,tz=x` is one option whose value is `yes,tz=x`, as in Asterisk.
 */
function parseMailboxLine(context: string, e: ConfEntry): ParsedBox {
  const mailbox = e.name;
  if (mailbox.startsWith('*')) {
    return { problem: `mailbox ${JSON.stringify(mailbox)} begins with '*', which jumps to a menu in Asterisk; skipped` };
  }
  if (!isSafeName(mailbox)) return { problem: `${new UnsafeNameError('mailbox', mailbox).message}; skipped` };
  const parts = e.value.split(',');
  let password = stripSpace(parts[0] ?? '');
  if (password.startsWith('-')) password = password.slice(1);
  if (password.startsWith('*')) {
    return { problem: `the password of mailbox ${mailbox} in [${context}] begins with '*', which Asterisk rejects; skipped` };
  }
  const fullName = stripSpace(parts[1] ?? '');
  const emails = (parts[2] ?? '').split('|').map(stripSpace).filter((a) => a !== '');
  const pager = stripSpace(parts[3] ?? '');
  const options = new Map<string, string>();
  const optionProblems: ConfProblem[] = [];
  for (const item of parts.slice(4).join(',').split('|')) {
    const text = stripSpace(item);
    if (text === '') continue;
    const eq = text.indexOf('=');
    const key = stripSpace(eq < 0 ? text : text.slice(0, eq)).toLowerCase();
    if (eq < 0 || key === '') {
      // apply_options skips an item without '=' silently; say so, as it is almost always a typo.
      optionProblems.push({ file: e.file, line: e.line, problem: `option ${JSON.stringify(text)} of mailbox ${mailbox} is not key=value; ignored` });
      continue;
    }
    options.set(key, stripSpace(text.slice(eq + 1)));
  }
  return {
    box: { context, mailbox, password, fullName, emails, pager, options: Object.fromEntries(options), file: e.file, line: e.line },
    optionProblems,
  };
}

/** A mailbox option, else the [general] value of the same name, else undefined. Case-insensitive. */
export function boxOption(conf: VoicemailConf, box: VoicemailBox, key: string): string | undefined {
  const k = key.toLowerCase();
  if (Object.hasOwn(box.options, k)) return box.options[k];
  if (Object.hasOwn(conf.general, k)) return conf.general[k];
  return undefined;
}

/**
 * A mailbox's maxmsg as app_voicemail reads it (apply_option, populate_defaults): the mailbox's
 * option, else [general]'s, else 100; read like atoi (text that is no number is 0, a greetings-only
 * mailbox); negative means the default 100; above 9999 (MAXMSGLIMIT) means 9999.
 */
export function boxMaxmsg(conf: VoicemailConf, box: VoicemailBox): number {
  const value = boxOption(conf, box, 'maxmsg');
  if (value === undefined) return 100;
  const digits = /^\s*([+-]?\d+)/.exec(value);
  const n = digits ? Number.parseInt(digits[1]!, 10) : 0;
  if (n < 0) return 100;
  return Math.min(n, 9999);
}

/**
 * A mailbox's backupdeleted as app_voicemail reads it (apply_option): how many deleted messages
 * are kept in Deleted/. The mailbox's option, else [general]'s, else 0 (none kept). A number is
 * used as is (negative means 100, above 9999 means 9999); otherwise yes/true/on means 100 and
 * anything else 0.
 */
export function boxBackupDeleted(conf: VoicemailConf, box: VoicemailBox): number {
  const value = boxOption(conf, box, 'backupdeleted');
  if (value === undefined) return 0;
  const digits = /^\s*([+-]?\d+)/.exec(value);
  if (digits) {
    const n = Number.parseInt(digits[1]!, 10);
    return n < 0 ? 100 : Math.min(n, 9999);
  }
  return /^\s*(yes|true|y|t|1|on)\s*$/i.test(value) ? 100 : 0;
}

/**
 * The IANA time zone of a mailbox: its `tz=` (or [general] `tz=`) names a [zonemessages] entry
 * `<IANA tz>|<format>`. Undefined when unset or when the zone is not defined (Asterisk then uses the
 * system time zone).
 */
export function boxTimezone(conf: VoicemailConf, box: VoicemailBox): string | undefined {
  const zoneName = boxOption(conf, box, 'tz');
  if (zoneName === undefined || zoneName === '') return undefined;
  let zone = Object.hasOwn(conf.zonemessages, zoneName) ? conf.zonemessages[zoneName] : undefined;
  if (zone === undefined) {
    const lower = zoneName.toLowerCase();
    const key = Object.keys(conf.zonemessages).find((k) => k.toLowerCase() === lower);
    zone = key === undefined ? undefined : conf.zonemessages[key];
  }
  if (zone === undefined) return undefined;
  const tz = stripSpace(zone.split('|')[0] ?? '');
  return tz === '' ? undefined : tz;
}

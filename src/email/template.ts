/**
 * Asterisk's email templates (voicemail.conf emailsubject=, emailbody=, fromstring=): the escapes
 * app_voicemail turns into characters when it reads the option (substitute_escapes), then
 * variable substitution as pbx_substitute_variables does it for the dummy channel the mail is
 * made on. Pure: the values come in, text goes out.
 *
 * What vmbridge cannot evaluate, because it needs a running Asterisk (a dialplan function such
 * as ${SHELL(...)} or ${DB(...)}, or an expression $[...]), becomes empty text, as a variable
 * with no value does, and is named in `unsupported` so that it can be reported, not dropped
 * without a word.
 */

export interface Rendered {
  readonly text: string;
  /** Dialplan functions (by name) and `$[...]` expressions left out. */
  readonly unsupported: readonly string[];
}

/** `\n`, `\r`, `\t` and `\\` as app_voicemail's substitute_escapes reads them; any other escape is dropped. */
export function substituteEscapes(value: string): { text: string; dropped: string[] } {
  let text = '';
  const dropped: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c !== '\\') {
      text += c;
      continue;
    }
    const next = value[++i];
    if (next === undefined) break;
    if (next === 'n') text += '\n';
    else if (next === 'r') text += '\r';
    else if (next === 't') text += '\t';
    else if (next === '\\') text += '\\';
    else dropped.push(`\\${next}`);
  }
  return { text, dropped };
}

/** Nesting deeper than this is not a template anyone wrote; it is cut off rather than followed. */
const MAX_DEPTH = 15;

/** Substitutes `${NAME}`, `${NAME:offset}`, `${NAME:offset:length}` (nesting allowed) from `vars`. */
export function substituteVariables(template: string, vars: Readonly<Record<string, string>>): Rendered {
  const unsupported = new Set<string>();
  const text = expand(template, vars, unsupported, 0);
  return { text, unsupported: [...unsupported] };
}

function expand(s: string, vars: Readonly<Record<string, string>>, unsupported: Set<string>, depth: number): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const start = s.indexOf('$', i);
    if (start < 0 || start === s.length - 1) {
      out += s.slice(i);
      break;
    }
    out += s.slice(i, start);
    const open = s[start + 1];
    if (open !== '{' && open !== '[') {
      out += '$';
      i = start + 1;
      continue;
    }
    const end = matching(s, start + 1, open, open === '{' ? '}' : ']');
    if (end < 0) {
      // Unclosed: Asterisk copies the rest as it is.
      out += s.slice(start);
      break;
    }
    const inner = s.slice(start + 2, end);
    if (open === '[') {
      unsupported.add('$[...]');
    } else if (depth >= MAX_DEPTH) {
      unsupported.add('${...} nested too deep');
    } else {
      out += lookup(expand(inner, vars, unsupported, depth + 1), vars, unsupported);
    }
    i = end + 1;
  }
  return out;
}

/** Index of the bracket closing the one at `at`, counting nested `${`/`$[` pairs. */
function matching(s: string, at: number, open: string, close: string): number {
  let depth = 0;
  for (let j = at; j < s.length; j++) {
    if (s[j] === open && s[j - 1] === '$') depth++;
    else if (s[j] === close && --depth === 0) return j;
  }
  return -1;
}

function lookup(expr: string, vars: Readonly<Record<string, string>>, unsupported: Set<string>): string {
  const fn = /^([A-Za-z0-9_.]+)\(/.exec(expr);
  if (fn) {
    unsupported.add(`${fn[1]!.toUpperCase()}()`);
    return '';
  }
  const m = /^([^:]*)(?::(-?\d*)(?::(-?\d*))?)?$/.exec(expr);
  if (!m) return '';
  const value = vars[m[1] ?? ''] ?? '';
  if (m[2] === undefined) return value;
  return substring(value, Number(m[2] || 0), m[3] === undefined || m[3] === '' ? undefined : Number(m[3]));
}

/** ${VAR:offset:length} as Asterisk's substring: negative offset counts from the end, negative length leaves that many off the end. */
function substring(value: string, offset: number, length: number | undefined): string {
  const chars = [...value];
  let from = offset < 0 ? Math.max(0, chars.length + offset) : Math.min(offset, chars.length);
  let to = chars.length;
  if (length !== undefined) to = length < 0 ? Math.max(from, chars.length + length) : Math.min(chars.length, from + length);
  if (from > to) from = to;
  return chars.slice(from, to).join('');
}

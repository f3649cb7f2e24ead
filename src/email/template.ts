/**
 * Asterisk's email templates (voicemail.conf emailsubject=, emailbody=, fromstring=): the escapes
 * app_voicemail turns into characters when it reads the option (substitute_escapes), then
 * variable substitution as pbx_substitute_variables does it for the dummy channel the mail is
 * made on. Pure: the values come in, text goes out.
 *
 * The dialplan functions templates use to choose between values are evaluated as Asterisk does:
 * ${IF(cond?a:b)}, ${ISNULL(x)}, ${LEN(x)}, and expressions $[...] with comparisons, & | ! and
 * parentheses (Asterisk's own sample voicemail.conf uses them to tell a forwarded message apart).
 * What needs a running Asterisk (${SHELL(...)}, ${DB(...)}, ${CALLERID(...)}, ...) becomes empty
 * text, as a variable with no value does, and is named in `unsupported` so that it can be
 * reported, not dropped without a word.
 */
import { evaluateExpression, isTrueCondition } from './expression.js';

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
    if (depth >= MAX_DEPTH) {
      unsupported.add(open === '[' ? '$[...] nested too deep' : '${...} nested too deep');
    } else if (open === '[') {
      const value = evaluateExpression(expand(inner, vars, unsupported, depth + 1));
      if (value === undefined) unsupported.add('$[...]');
      else out += value;
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
  const fn = /^([A-Za-z0-9_.]+)\((.*)\)$/s.exec(expr);
  if (fn) {
    const name = fn[1]!.toUpperCase();
    const args = fn[2] ?? '';
    if (name === 'IF') return ifFunction(args);
    if (name === 'ISNULL') return args === '' ? '1' : '0';
    if (name === 'LEN') return String([...args].length);
    unsupported.add(`${name}()`);
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

/**
 * ${IF(condition?true:false)}: the condition is true unless it is empty or a number equal to 0
 * (pbx_checkcondition); the value chosen loses the blanks at both ends, as func_logic's IF does.
 */
function ifFunction(args: string): string {
  const q = args.indexOf('?');
  const cond = (q < 0 ? args : args.slice(0, q)).trim();
  const rest = q < 0 ? '' : args.slice(q + 1);
  const c = rest.indexOf(':');
  const whenTrue = c < 0 ? rest : rest.slice(0, c);
  const whenFalse = c < 0 ? '' : rest.slice(c + 1);
  return (isTrueCondition(cond) ? whenTrue : whenFalse).trim();
}


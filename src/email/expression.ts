/**
 * The part of Asterisk's $[...] expressions (main/ast_expr2.y) that email templates use: quoted
 * strings and bare words, numbers, = != < > <= >= (numeric when both sides are numbers, else as
 * strings), & (and), | (or), ! (not) and parentheses. A comparison gives 1 or 0; `a | b` gives a
 * when it is true, else b; `a & b` gives a when both are true, else 0 — as Asterisk does.
 * Anything else (arithmetic, regular expressions, the ternary ?:) gives undefined: reported, not
 * guessed at.
 */

/** True unless empty or a number equal to 0 (pbx_checkcondition). */
export function isTrueCondition(s: string): boolean {
  if (s === '') return false;
  const n = Number(s);
  return !(s.trim() !== '' && Number.isFinite(n) && n === 0);
}

type Token = { kind: 'value'; text: string } | { kind: 'op'; text: string };

const OPS = ['<=', '>=', '!=', '=', '<', '>', '&', '|', '!', '(', ')'];

function tokenize(s: string): Token[] | undefined {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '"') {
      const end = s.indexOf('"', i + 1);
      if (end < 0) return undefined;
      out.push({ kind: 'value', text: s.slice(i + 1, end) });
      i = end + 1;
      continue;
    }
    const op = OPS.find((o) => s.startsWith(o, i));
    if (op) {
      out.push({ kind: 'op', text: op });
      i += op.length;
      continue;
    }
    if (/[+\-*/%:?~]/.test(c)) return undefined; // arithmetic, regex match, ternary: not here
    let j = i;
    while (j < s.length && !/[\s"<>=!&|()+\-*/%:?~]/.test(s[j]!)) j++;
    out.push({ kind: 'value', text: s.slice(i, j) });
    i = j;
  }
  return out;
}

export function evaluateExpression(source: string): string | undefined {
  const tokens = tokenize(source);
  if (!tokens) return undefined;
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];
  const isOp = (t: Token | undefined, ...ops: string[]): boolean => t?.kind === 'op' && ops.includes(t.text);

  const primary = (): string | undefined => {
    const t = tokens[pos++];
    if (!t) return undefined;
    if (t.kind === 'value') return t.text;
    if (t.text === '(') {
      const v = or();
      if (!isOp(tokens[pos++], ')')) return undefined;
      return v;
    }
    if (t.text === '!') {
      const v = primary();
      return v === undefined ? undefined : isTrueCondition(v) ? '0' : '1';
    }
    return undefined;
  };
  const comparison = (): string | undefined => {
    const left = primary();
    if (left === undefined) return undefined;
    const t = peek();
    if (!isOp(t, '=', '!=', '<', '>', '<=', '>=')) return left;
    pos++;
    const right = primary();
    if (right === undefined) return undefined;
    const numeric = /^-?\d+(\.\d+)?$/.test(left) && /^-?\d+(\.\d+)?$/.test(right);
    const cmp = numeric ? Math.sign(Number(left) - Number(right)) : left < right ? -1 : left > right ? 1 : 0;
    const yes = { '=': cmp === 0, '!=': cmp !== 0, '<': cmp < 0, '>': cmp > 0, '<=': cmp <= 0, '>=': cmp >= 0 }[t!.text as '=' | '!=' | '<' | '>' | '<=' | '>='];
    return yes ? '1' : '0';
  };
  const and = (): string | undefined => {
    let left = comparison();
    while (left !== undefined && isOp(peek(), '&')) {
      pos++;
      const right = comparison();
      if (right === undefined) return undefined;
      left = isTrueCondition(left) && isTrueCondition(right) ? left : '0';
    }
    return left;
  };
  const or = (): string | undefined => {
    let left = and();
    while (left !== undefined && isOp(peek(), '|')) {
      pos++;
      const right = and();
      if (right === undefined) return undefined;
      left = isTrueCondition(left) ? left : right;
    }
    return left;
  };
  const value = or();
  return pos === tokens.length ? value : undefined;
}

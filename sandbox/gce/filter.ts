/**
 * The subset of Compute Engine list filters the sandbox understands:
 *
 *   labels.env = "ci"            name = "runner-1"         name = runner-1      status != "RUNNING"
 *   labels.a = "x" AND name = "y"                          (labels.a = "x") (name = "y")
 *   (name = "n1-standard-4") OR (name = "g2-standard-4")
 *
 * Clauses are joined by `AND`, `OR`, or blanks (an implicit AND); one level may not mix AND with
 * OR (parenthesise instead). `=` compares exactly. Anything else is the API's 400 "Invalid list
 * filter expression".
 */
import { invalidField } from './errors.js';

export type FieldGetter = (field: string) => string | undefined;
export type Predicate = (get: FieldGetter) => boolean;

type Token = { kind: 'lparen' | 'rparen' | 'op' | 'word' | 'string'; text: string };

export function parseFilter(filter: string | undefined, knownField: (field: string) => boolean): Predicate {
  if (filter === undefined || filter.trim() === '') return () => true;
  const fail = (): never => {
    throw invalidField('filter', filter, 'Invalid list filter expression.');
  };
  const tokens = tokenize(filter, fail);
  let pos = 0;
  const peek = (): Token | undefined => tokens[pos];

  const comparison = (): Predicate => {
    const field = tokens[pos++];
    if (field?.kind !== 'word' || !/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*$/.test(field.text)) return fail();
    if (!knownField(field.text)) return fail();
    const op = tokens[pos++];
    if (op?.kind !== 'op') return fail();
    const value = tokens[pos++];
    if (!value || (value.kind !== 'word' && value.kind !== 'string')) return fail();
    const name = field.text;
    const want = value.text;
    return op.text === '=' ? (get) => get(name) === want : (get) => get(name) !== want;
  };

  const term = (): Predicate => {
    if (peek()?.kind === 'lparen') {
      pos++;
      const inner = expression();
      if (peek()?.kind !== 'rparen') return fail();
      pos++;
      return inner;
    }
    return comparison();
  };

  const expression = (): Predicate => {
    const terms: Predicate[] = [term()];
    let joiner: 'AND' | 'OR' | undefined;
    while (pos < tokens.length && peek()?.kind !== 'rparen') {
      let conj: 'AND' | 'OR' = 'AND';
      const t = peek()!;
      if (t.kind === 'word' && (t.text === 'AND' || t.text === 'OR')) {
        conj = t.text;
        pos++;
      }
      if (joiner !== undefined && joiner !== conj) return fail();
      joiner = conj;
      terms.push(term());
    }
    if (joiner === 'OR') return (get) => terms.some((p) => p(get));
    return (get) => terms.every((p) => p(get));
  };

  const predicate = expression();
  if (pos !== tokens.length) return fail();
  return predicate;
}

function tokenize(s: string, fail: () => never): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '(') {
      out.push({ kind: 'lparen', text: c });
      i++;
    } else if (c === ')') {
      out.push({ kind: 'rparen', text: c });
      i++;
    } else if (c === '=') {
      out.push({ kind: 'op', text: '=' });
      i++;
    } else if (c === '!' && s[i + 1] === '=') {
      out.push({ kind: 'op', text: '!=' });
      i += 2;
    } else if (c === '"') {
      let j = i + 1;
      let text = '';
      while (j < s.length && s[j] !== '"') {
        if (s[j] === '\\' && j + 1 < s.length) j++;
        text += s[j];
        j++;
      }
      if (j >= s.length) fail();
      out.push({ kind: 'string', text });
      i = j + 1;
    } else {
      const m = /^[^\s()"=!]+/.exec(s.slice(i));
      if (!m) fail();
      out.push({ kind: 'word', text: m![0] });
      i += m![0].length;
    }
  }
  return out;
}

/**
 * Label and field selectors as the API server parses them (k8s.io/apimachinery/pkg/labels and
 * pkg/fields): `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, joined by commas
 * (AND). A malformed selector is a 400 BadRequest with the parser's message.
 * https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
 */
import { badRequest } from './status.js';
import { isLabelValue, isQualifiedName } from './validation.js';

type Op = '=' | '==' | '!=' | 'in' | 'notin' | 'exists' | '!' | 'gt' | 'lt';

interface Requirement {
  key: string;
  op: Op;
  values: string[];
}

export type LabelSelector = (labels: Record<string, string> | undefined) => boolean;

type Token = {
  kind: 'id' | 'in' | 'notin' | '=' | '==' | '!=' | '!' | '(' | ')' | ',' | '>' | '<' | 'end';
  text: string;
};

function lex(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const special = new Set([' ', '\t', '\n', '!', '=', '(', ')', ',', '<', '>']);
  while (i < input.length) {
    const c = input[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      i += 1;
    } else if (c === '=' && input[i + 1] === '=') {
      tokens.push({ kind: '==', text: '==' });
      i += 2;
    } else if (c === '!' && input[i + 1] === '=') {
      tokens.push({ kind: '!=', text: '!=' });
      i += 2;
    } else if (c === '=' || c === '!' || c === '(' || c === ')' || c === ',' || c === '<' || c === '>') {
      tokens.push({ kind: c, text: c });
      i += 1;
    } else {
      let j = i;
      while (j < input.length && !special.has(input[j]!)) j += 1;
      const text = input.slice(i, j);
      tokens.push({ kind: text === 'in' ? 'in' : text === 'notin' ? 'notin' : 'id', text });
      i = j;
    }
  }
  tokens.push({ kind: 'end', text: '' });
  return tokens;
}

/** Parses a label selector; throws a 400 BadRequest with the parser's words when it is malformed. */
export function parseLabelSelector(input: string): LabelSelector {
  const reqs: Requirement[] = [];
  const tokens = lex(input);
  let p = 0;
  const peek = (): Token => tokens[p]!;
  const next = (): Token => tokens[p++]!;
  const fail = (why: string): never => {
    throw badRequest(`unable to parse requirement: ${why}`);
  };
  const shown = (t: Token): string => (t.kind === 'end' ? '' : t.text);

  if (peek().kind === 'end') return () => true;
  for (;;) {
    const first = peek();
    if (first.kind !== 'id' && first.kind !== '!') {
      throw badRequest(`found '${shown(first)}', expected: !, identifier, or 'end of string'`);
    }
    let req: Requirement;
    if (first.kind === '!') {
      next();
      const key = next();
      if (key.kind !== 'id') fail(`found '${shown(key)}', expected: identifier`);
      req = { key: key.text, op: '!', values: [] };
    } else {
      const key = next().text;
      const op = peek();
      if (op.kind === ',' || op.kind === 'end') {
        req = { key, op: 'exists', values: [] };
      } else if (op.kind === 'in' || op.kind === 'notin') {
        next();
        if (next().kind !== '(') fail(`found '${shown(tokens[p - 1]!)}', expected: '('`);
        const values: string[] = [];
        for (;;) {
          const t = next();
          if (t.kind === 'id') {
            values.push(t.text);
            const sep = next();
            if (sep.kind === ')') break;
            if (sep.kind !== ',') fail(`found '${shown(sep)}', expected: ',' or ')'`);
          } else if (t.kind === ')') {
            break;
          } else if (t.kind === ',') {
            values.push('');
          } else {
            fail(`found '${shown(t)}', expected: ',', ')' or identifier`);
          }
        }
        req = { key, op: op.kind, values };
      } else if (op.kind === '=' || op.kind === '==' || op.kind === '!=' || op.kind === '>' || op.kind === '<') {
        next();
        const v = peek();
        const value = v.kind === 'id' ? next().text : '';
        if (v.kind !== 'id' && v.kind !== ',' && v.kind !== 'end') fail(`found '${shown(v)}', expected: identifier`);
        req = { key, op: op.kind === '>' ? 'gt' : op.kind === '<' ? 'lt' : op.kind, values: [value] };
      } else {
        fail(`found '${shown(op)}', expected: in, notin, =, ==, !=, gt, lt`);
      }
    }
    for (const m of isQualifiedName(req!.key)) fail(`key: Invalid value: ${JSON.stringify(req!.key)}: ${m}`);
    if (req!.op === 'gt' || req!.op === 'lt') {
      if (!/^-?\d+$/.test(req!.values[0]!))
        fail(
          `values[0]: Invalid value: ${JSON.stringify(req!.values[0])}: for 'Gt', 'Lt' operators, the value must be an integer`,
        );
    } else {
      req!.values.forEach((v, i) => {
        for (const m of isLabelValue(v)) fail(`values[${i}][${req!.key}]: Invalid value: ${JSON.stringify(v)}: ${m}`);
      });
    }
    reqs.push(req!);
    const sep = next();
    if (sep.kind === 'end') break;
    if (sep.kind !== ',') throw badRequest(`found '${shown(sep)}', expected: ',' or 'end of string'`);
    const after = peek();
    if (after.kind !== 'id' && after.kind !== '!')
      throw badRequest(`found '${shown(after)}', expected: identifier after ','`);
  }
  return (labels) => reqs.every((r) => matches(r, labels ?? {}));
}

function matches(r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const v = labels[r.key];
  switch (r.op) {
    case '=':
    case '==':
      return has && v === r.values[0];
    case '!=':
      return !has || v !== r.values[0];
    case 'in':
      return has && r.values.includes(v!);
    case 'notin':
      return !has || !r.values.includes(v!);
    case 'exists':
      return has;
    case '!':
      return !has;
    case 'gt':
      return has && /^-?\d+$/.test(v!) && Number(v) > Number(r.values[0]);
    case 'lt':
      return has && /^-?\d+$/.test(v!) && Number(v) < Number(r.values[0]);
  }
}

export type FieldSelector = (fields: Record<string, string>) => boolean;

/**
 * Parses a field selector (`a=b,c!=d`, with `\,` `\=` `\\` escapes) and checks its fields are
 * ones this resource supports (the server answers `field label not supported: x` otherwise).
 */
export function parseFieldSelector(input: string, supported: readonly string[]): FieldSelector {
  const terms: Array<{ field: string; op: '=' | '!='; value: string }> = [];
  if (input.trim() === '') return () => true;
  for (const part of splitUnescaped(input, ',')) {
    const m = /^(.*?)(!=|==|=)(.*)$/s.exec(part);
    if (!m) throw badRequest(`invalid selector: '${input}'; can't understand '${part}'`);
    const field = unescapeSelector(m[1]!.trim());
    if (!supported.includes(field)) throw badRequest(`field label not supported: ${field}`);
    terms.push({ field, op: m[2] === '!=' ? '!=' : '=', value: unescapeSelector(m[3]!) });
  }
  return (fields) => terms.every((t) => ((fields[t.field] ?? '') === t.value) === (t.op === '='));
}

function splitUnescaped(s: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1]!;
      i += 1;
    } else if (c === sep) {
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  parts.push(cur);
  return parts;
}

const unescapeSelector = (s: string): string => s.replace(/\\(.)/g, '$1');

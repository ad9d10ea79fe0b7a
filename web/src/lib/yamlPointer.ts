// Where a JSON pointer lands in YAML text: so the API's field errors (problem+json
// `errors[].pointer`) can be shown on the right line of the YAML editor.
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import type { Node as YamlNode, Pair } from 'yaml';
import { pointerSegments } from '../api/problem';

export interface TextSpan {
  from: number;
  to: number;
  /** 1-based line and column of `from`. */
  line: number;
  col: number;
  /** False when the pointer's node does not exist and an ancestor is shown instead. */
  exact: boolean;
}

function rangeOf(node: unknown): [number, number] | null {
  const r = (node as { range?: [number, number, number] } | null)?.range;
  return r ? [r[0], r[1]] : null;
}

/** Locates `pointer` in `text`; null when the text does not parse at all. */
export function locatePointer(text: string, pointer: string): TextSpan | null {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, keepSourceTokens: false });
  if (doc.errors.length > 0 && !doc.contents) return null;
  const segments = pointerSegments(pointer);
  let node: unknown = doc.contents;
  // The best span so far: the key of the deepest pair found, or the node itself.
  let best: [number, number] | null = rangeOf(node);
  let exact = true;
  for (const seg of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p: Pair) => {
        const k = p.key;
        return isScalar(k) ? String(k.value) === seg : String(k) === seg;
      });
      if (!pair) {
        exact = false;
        break;
      }
      best = rangeOf(pair.key) ?? best;
      node = pair.value;
    } else if (isSeq(node)) {
      const idx = Number(seg);
      const item = Number.isInteger(idx) ? node.items[idx] : undefined;
      if (item === undefined) {
        exact = false;
        break;
      }
      node = item;
      best = rangeOf(item) ?? best;
    } else {
      exact = false;
      break;
    }
  }
  // For a scalar value, point at the value itself (a CEL error is in the expression).
  if (exact && isScalar(node as YamlNode)) best = rangeOf(node) ?? best;
  else if (exact && isPair(node)) best = rangeOf((node as Pair).key) ?? best;
  if (!best) return { from: 0, to: 0, line: 1, col: 1, exact: false };
  const pos = lc.linePos(best[0]);
  return { from: best[0], to: Math.max(best[0], best[1]), line: pos.line, col: pos.col, exact };
}

export interface YamlProblem {
  message: string;
  line: number;
  col: number;
  from: number;
  to: number;
}

/** Parses one YAML document to a plain value; errors carry their line. */
export function parseYaml(text: string): { value: unknown; error: YamlProblem | null } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const from = err.pos[0];
    const to = Math.max(err.pos[1], from);
    const pos = lc.linePos(from);
    return {
      value: undefined,
      error: { message: cleanMessage(err.message), line: pos.line, col: pos.col, from, to },
    };
  }
  try {
    return { value: doc.toJS({ maxAliasCount: 100 }), error: null };
  } catch (e) {
    return {
      value: undefined,
      error: { message: e instanceof Error ? e.message : String(e), line: 1, col: 1, from: 0, to: 0 },
    };
  }
}

function cleanMessage(m: string): string {
  // The yaml package appends "at line N, column M:" plus a source excerpt with prettyErrors;
  // without it, the message is already one line.
  return m.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

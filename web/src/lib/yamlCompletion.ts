// Schema-aware completion for the YAML editor: where in the document the cursor is (a path
// of keys and indices, and whether a key or a value is being typed), what the JSON Schema
// the API serves (GET /api/v1/schemas/{kind}) allows there, plus catalog values (dataset
// names, target clusters, source aliases, `alias.field` paths).

export type Segment = string | number;

export interface CursorContext {
  path: Segment[];
  mode: 'key' | 'value';
  /** The key whose value is typed (value mode). */
  key?: string;
  /** The word typed so far. */
  prefix: string;
  /** Keys already present beside the one being typed (key mode). */
  siblings: string[];
}

interface Frame {
  col: number;
  seg: Segment;
  kind: 'key' | 'item';
  items: number;
  childKeys: string[];
}

const KEY_RE = /^([A-Za-z_$][\w.$-]*|"[^"]*"|'[^']*')\s*:(?:\s|$)/;

function unquote(k: string): string {
  return k.startsWith('"') || k.startsWith("'") ? k.slice(1, -1) : k;
}

/** Processes one line (or the cursor line's prefix) into the frame stack. */
function scanLine(stack: Frame[], root: Frame, line: string, isCursorLine: boolean): { col: number; rest: string } {
  let col = line.length - line.trimStart().length;
  let rest = line.slice(col);
  // Sequence item markers: "- " (possibly several on one line).
  while (rest.startsWith('- ') || rest === '-') {
    while (stack.length && (stack[stack.length - 1].col > col || (stack[stack.length - 1].kind === 'item' && stack[stack.length - 1].col === col))) stack.pop();
    const parent = stack[stack.length - 1] ?? root;
    const idx = parent.items++;
    stack.push({ col, seg: idx, kind: 'item', items: 0, childKeys: [] });
    const skip = rest === '-' ? 1 : 2 + (rest.slice(2).length - rest.slice(2).trimStart().length);
    col += skip;
    rest = rest.slice(skip);
  }
  if (!isCursorLine) {
    const m = KEY_RE.exec(rest);
    if (m) {
      while (stack.length && stack[stack.length - 1].col >= col) stack.pop();
      const parent = stack[stack.length - 1] ?? root;
      const key = unquote(m[1]);
      parent.childKeys.push(key);
      stack.push({ col, seg: key, kind: 'key', items: 0, childKeys: [] });
    }
  }
  return { col, rest };
}

/** Where the cursor at `pos` is in the YAML `text` (block style, and one level of flow maps). */
export function cursorContext(text: string, pos: number): CursorContext {
  const before = text.slice(0, pos);
  const lines = before.split('\n');
  const current = lines.pop() ?? '';
  const root: Frame = { col: -1, seg: '', kind: 'key', items: 0, childKeys: [] };
  const stack: Frame[] = [];
  for (const raw of lines) {
    const line = raw.replace(/\s+#.*$/, '');
    if (!line.trim() || line.trimStart().startsWith('#') || line.startsWith('---')) continue;
    scanLine(stack, root, line, false);
  }
  const { col, rest } = scanLine(stack, root, current, true);

  // A flow map on this line: `{name: o, dataset: sh|`.
  const brace = rest.lastIndexOf('{');
  if (brace !== -1 && rest.indexOf('}', brace) === -1) {
    const inner = rest.slice(brace + 1);
    const lastComma = inner.lastIndexOf(',');
    const part = inner.slice(lastComma + 1).trimStart();
    const outer = rest.slice(0, brace);
    const outerKey = KEY_RE.exec(outer);
    while (stack.length && stack[stack.length - 1].col >= col && stack[stack.length - 1].kind === 'key') stack.pop();
    const base = stack.map((f) => f.seg);
    if (outerKey) base.push(unquote(outerKey[1]));
    const siblings = inner
      .slice(0, lastComma === -1 ? 0 : lastComma)
      .split(',')
      .map((p) => p.split(':')[0].trim())
      .filter(Boolean);
    const kv = /^([\w.$-]+)\s*:\s*(.*)$/.exec(part);
    if (kv) return { path: [...base, kv[1]], mode: 'value', key: kv[1], prefix: kv[2].replace(/^["']/, ''), siblings };
    return { path: base, mode: 'key', prefix: part, siblings };
  }

  const kv = KEY_RE.exec(rest) ?? /^([A-Za-z_$][\w.$-]*)\s*:$/.exec(rest);
  while (stack.length && stack[stack.length - 1].col >= col) stack.pop();
  const parent = stack[stack.length - 1] ?? root;
  const base = stack.map((f) => f.seg);
  if (kv) {
    const key = unquote(kv[1]);
    const value = rest.slice(kv[0].length).replace(/^\s+/, '');
    return { path: [...base, key], mode: 'value', key, prefix: value.replace(/^["']/, ''), siblings: parent.childKeys };
  }
  return { path: base, mode: 'key', prefix: rest.trim(), siblings: parent.childKeys };
}

// ---- JSON Schema navigation -------------------------------------------------------------

export type Schema = Record<string, unknown>;

function resolveRef(root: Schema, s: Schema): Schema {
  let cur = s;
  for (let i = 0; i < 10 && typeof cur.$ref === 'string'; i++) {
    const ref = cur.$ref as string;
    if (!ref.startsWith('#/')) break;
    let target: unknown = root;
    for (const part of ref.slice(2).split('/')) target = (target as Schema | undefined)?.[part];
    if (!target || typeof target !== 'object') break;
    cur = target as Schema;
  }
  return cur;
}

/** The schema alternatives a value may take (anyOf/oneOf flattened, refs resolved). */
export function alternatives(root: Schema, s: Schema | undefined): Schema[] {
  if (!s) return [];
  const r = resolveRef(root, s);
  const alts = (r.anyOf ?? r.oneOf) as Schema[] | undefined;
  if (Array.isArray(alts)) {
    const out = alts.flatMap((a) => alternatives(root, a));
    // Keep the description of the wrapper for the alternatives that lack one.
    return out.map((a) => (a.description || !r.description ? a : { ...a, description: r.description }));
  }
  return [r];
}

/** The schemas at `path` inside `root`. */
export function schemasAt(root: Schema, path: Segment[]): Schema[] {
  let current = alternatives(root, root);
  for (const seg of path) {
    const next: Schema[] = [];
    for (const s of current) {
      if (typeof seg === 'number') {
        if (s.items && typeof s.items === 'object') next.push(...alternatives(root, s.items as Schema));
      } else {
        const props = s.properties as Record<string, Schema> | undefined;
        if (props && props[seg]) next.push(...alternatives(root, props[seg]));
        else if (s.additionalProperties && typeof s.additionalProperties === 'object')
          next.push(...alternatives(root, s.additionalProperties as Schema));
      }
    }
    current = next;
    if (!current.length) break;
  }
  return current;
}

export interface Suggestion {
  label: string;
  /** Text inserted. */
  apply: string;
  type: 'property' | 'enum' | 'keyword' | 'variable' | 'constant' | 'text';
  detail?: string;
  info?: string;
  boost?: number;
}

export interface CatalogHints {
  datasets: string[];
  clusters: string[];
  aliases: string[];
  /** `alias.field` paths. */
  fieldPaths: { path: string; type: string; pii: boolean }[];
}

const EXPRESSION_KEYS = new Set(['on', 'filter', 'key', 'expr']);

function typeOf(s: Schema): string {
  const t = s.type;
  if (Array.isArray(t)) return t.filter((x) => x !== 'null').join(' | ');
  if (typeof t === 'string') return t;
  if ('const' in s) return 'constant';
  return '';
}

/** What may be typed at the cursor. */
export function suggest(root: Schema, ctx: CursorContext, hints: CatalogHints): Suggestion[] {
  const out: Suggestion[] = [];
  if (ctx.mode === 'key') {
    const seen = new Set<string>();
    for (const s of schemasAt(root, ctx.path)) {
      const props = s.properties as Record<string, Schema> | undefined;
      if (!props) continue;
      const required = new Set((s.required as string[] | undefined) ?? []);
      for (const [name, ps] of Object.entries(props)) {
        if (seen.has(name) || ctx.siblings.includes(name)) continue;
        const alts = alternatives(root, ps);
        if (alts.every((a) => a.readOnly === true) || ps.readOnly === true || name === 'status') continue;
        seen.add(name);
        out.push({
          label: name,
          apply: `${name}: `,
          type: 'property',
          detail: [required.has(name) ? 'required' : '', alts.map(typeOf).filter(Boolean).join(' | ')].filter(Boolean).join(' · '),
          info: (ps.description as string | undefined) ?? (alts[0]?.description as string | undefined),
          boost: required.has(name) ? 2 : 0,
        });
      }
    }
    return out;
  }

  // Value mode.
  const schemas = schemasAt(root, ctx.path);
  for (const s of schemas) {
    if ('const' in s && typeof s.const === 'string') {
      out.push({ label: s.const, apply: s.const, type: 'enum', info: s.description as string | undefined });
    }
    if (Array.isArray(s.enum)) for (const v of s.enum) if (typeof v === 'string') out.push({ label: v, apply: v, type: 'enum' });
    if (s.type === 'boolean' || (Array.isArray(s.type) && s.type.includes('boolean'))) {
      out.push({ label: 'true', apply: 'true', type: 'keyword' }, { label: 'false', apply: 'false', type: 'keyword' });
    }
  }
  const p = ctx.path;
  const last = p[p.length - 1];
  const parent = p[p.length - 2];
  const grand = p[p.length - 3];
  if (last === 'dataset' && grand === 'sources') {
    for (const d of hints.datasets) out.push({ label: d, apply: d, type: 'variable', detail: 'dataset' });
  } else if (last === 'cluster' && parent === 'target') {
    for (const c of hints.clusters) out.push({ label: c, apply: c, type: 'variable', detail: 'target cluster' });
  } else if (last === 'right' && grand === 'joins') {
    for (const a of hints.aliases.slice(1)) out.push({ label: a, apply: a, type: 'variable', detail: 'source alias' });
  } else if (last === 'from' && grand === 'sources') {
    for (const v of ['earliest', 'latest', '1d', '7d', '30d', '90d'])
      out.push({ label: v, apply: v, type: 'constant', detail: 'start position' });
  } else if (parent === 'fields' || (typeof last === 'string' && EXPRESSION_KEYS.has(last))) {
    for (const f of hints.fieldPaths)
      out.push({ label: f.path, apply: f.path, type: 'variable', detail: f.pii ? `${f.type} · PII` : f.type });
  } else if (last === 'within' || last === 'freshness' || last === 'ttl') {
    for (const v of ['5s', '1m', '5m', '1h', '1d', '7d']) out.push({ label: v, apply: v, type: 'constant', detail: 'duration' });
  }
  return out;
}

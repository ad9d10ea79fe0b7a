// Helpers over DataProduct documents as the editor holds them.
import type { DataProduct, Dataset, FieldDraft, JsonSchema, ProductDoc, ProductSpecDraft } from '../api/types';

export const API_VERSION = 'sluice.dev/v1alpha1';

export function emptyProduct(team = ''): ProductDoc {
  return {
    apiVersion: API_VERSION,
    kind: 'DataProduct',
    metadata: { name: '', team },
    spec: {
      sources: [],
      fields: {},
      target: { name: '', mode: 'upsert' },
    },
  };
}

/** A stored product as an editable document: server fields and status left out. */
export function editableDoc(p: DataProduct): ProductDoc {
  const { name, team, description, labels } = p.metadata;
  const metadata: ProductDoc['metadata'] = { name, team: team ?? undefined };
  if (description) metadata.description = description;
  if (labels && Object.keys(labels).length) metadata.labels = labels;
  return clean({ apiVersion: p.apiVersion, kind: p.kind, metadata, spec: p.spec as ProductSpecDraft }) as ProductDoc;
}

/** Drops `undefined`, empty optional strings and empty optional collections, recursively. */
export function clean<T>(value: T): T {
  return cleanValue(value, []) as T;
}

const KEEP_EMPTY = new Set(['fields', 'sources', 'name', 'team', 'spec', 'metadata', 'target', 'expr', 'dataset', 'on', 'right']);

function cleanValue(v: unknown, path: string[]): unknown {
  if (Array.isArray(v)) return v.map((x, i) => cleanValue(x, [...path, String(i)]));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue;
      const c = cleanValue(x, [...path, k]);
      const isFieldEntry = path[path.length - 1] === 'fields';
      if (!KEEP_EMPTY.has(k) && !isFieldEntry) {
        if (c === '') continue;
        if (Array.isArray(c) && c.length === 0 && (k === 'joins' || k === 'tags')) continue;
        if (c && typeof c === 'object' && !Array.isArray(c) && Object.keys(c).length === 0 && (k === 'options' || k === 'slo' || k === 'labels'))
          continue;
      }
      out[k] = c;
    }
    return out;
  }
  return v;
}

export function fieldExpr(f: FieldDraft | undefined): string {
  if (f === undefined || f === null) return '';
  if (typeof f === 'string') return f;
  return f.expr ?? '';
}

export function fieldType(f: FieldDraft | undefined): string {
  if (f && typeof f === 'object') return f.type ?? '';
  return '';
}

export function fieldDescription(f: FieldDraft | undefined): string {
  if (f && typeof f === 'object') return f.description ?? '';
  return '';
}

/** The short form when it says everything, else `{expr, type, description}`. */
export function makeField(expr: string, type: string, description = ''): FieldDraft {
  if (!type && !description) return expr;
  const f: { expr: string; type?: string; description?: string } = { expr };
  if (type) f.type = type;
  if (description) f.description = description;
  return f;
}

const PLAIN_PATH = /^([a-z_][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)$/;

/** `o.amount` → {alias: 'o', field: 'amount'}; null for any other expression. */
export function plainPath(expr: string): { alias: string; field: string } | null {
  const m = PLAIN_PATH.exec(expr.trim());
  return m ? { alias: m[1], field: m[2] } : null;
}

/** Renames a key of an object keeping the order of its keys. */
export function renameKey<T>(obj: Record<string, T>, from: string, to: string): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of Object.entries(obj)) out[k === from ? to : k] = v;
  return out;
}

/** `o.customer_id == c.id` → both sides; null when `on` is not a simple equality. */
export function parseEquality(on: string | undefined): { left: string; right: string } | null {
  if (!on) return null;
  const m = /^\s*([a-z_][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)\s*==\s*([a-z_][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(on);
  return m ? { left: m[1], right: m[2] } : null;
}

export interface SchemaField {
  name: string;
  type: string;
  format?: string;
  required: boolean;
  pii: boolean;
  description?: string;
  enum?: unknown[];
}

export function typeLabel(s: JsonSchema | undefined): string {
  if (!s) return 'any';
  const t = Array.isArray(s.type) ? s.type.filter((x) => x !== 'null').join(' | ') || 'null' : s.type;
  if (t === 'string' && s.format === 'date-time') return 'timestamp';
  if (t === 'array' && s.items) return `array<${typeLabel(s.items)}>`;
  return t ?? 'any';
}

/** The top-level fields of a record schema, in schema order. */
export function schemaFields(schema: JsonSchema | undefined | null): SchemaField[] {
  if (!schema || typeof schema !== 'object' || !schema.properties) return [];
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties).map(([name, s]) => ({
    name,
    type: typeLabel(s),
    format: s.format,
    required: required.has(name),
    pii: s['x-pii'] === true,
    description: s.description,
    enum: s.enum,
  }));
}

export function datasetFields(ds: Dataset | undefined): SchemaField[] {
  return schemaFields(ds?.spec.schema as JsonSchema | undefined);
}

/** The fields each source alias offers, for pickers and completion. */
export function sourceFields(spec: ProductSpecDraft | undefined, datasets: Dataset[]): { alias: string; dataset: string; fields: SchemaField[] }[] {
  const byName = new Map(datasets.map((d) => [d.metadata.name, d]));
  return (spec?.sources ?? [])
    .filter((s) => s.name)
    .map((s) => ({ alias: s.name as string, dataset: s.dataset ?? '', fields: datasetFields(byName.get(s.dataset ?? '')) }));
}

/** A free alias for a new source from its dataset's name: `shop.orders` → `orders` → `o`… */
export function suggestAlias(dataset: string, taken: string[]): string {
  const last = dataset.split('.').pop() ?? 's';
  const base = (last.replace(/[^a-z0-9_]/g, '_').replace(/^[^a-z_]+/, '') || 's').slice(0, 20);
  const candidates = [base[0], base, ...Array.from({ length: 20 }, (_, i) => `${base[0]}${i + 2}`)];
  return candidates.find((c) => c && !taken.includes(c)) ?? `${base}_${taken.length}`;
}

/** The PII fields a spec takes: `alias.field` paths appearing in fields, key or filter. */
export function piiFieldsTaken(spec: ProductSpecDraft | undefined, datasets: Dataset[]): { dataset: string; field: string; alias: string }[] {
  const out: { dataset: string; field: string; alias: string }[] = [];
  if (!spec) return out;
  const exprs = [
    ...Object.values(spec.fields ?? {}).map(fieldExpr),
    spec.key ?? '',
    spec.filter ?? '',
    ...(spec.joins ?? []).map((j) => j.on ?? ''),
  ].join('\n');
  for (const src of sourceFields(spec, datasets)) {
    for (const f of src.fields) {
      if (!f.pii) continue;
      const re = new RegExp(`\\b${src.alias}\\.${f.name}\\b`);
      if (re.test(exprs)) out.push({ dataset: src.dataset, field: f.name, alias: src.alias });
    }
  }
  return out;
}

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

const singular = (name: string) => (name.split('.').pop() ?? name).replace(/ies$/, 'y').replace(/s$/, '');

/**
 * A likely join condition between the driving dataset and another one, from naming
 * conventions: `o.customer_id == c.id` (the driving record names the other's key) or
 * `o.id == p.order_id` (the other names the driving key). Empty when nothing fits.
 */
export function suggestJoinOn(leftAlias: string, left: Dataset | undefined, rightAlias: string, right: Dataset | undefined): string {
  if (!left || !right) return '';
  const lf = datasetFields(left).map((f) => f.name);
  const rf = datasetFields(right).map((f) => f.name);
  const rk = right.spec.key;
  const lk = left.spec.key;
  if (rk) {
    const ref = `${singular(right.metadata.name)}_${rk}`;
    if (lf.includes(ref)) return `${leftAlias}.${ref} == ${rightAlias}.${rk}`;
  }
  if (lk) {
    const ref = `${singular(left.metadata.name)}_${lk}`;
    if (rf.includes(ref)) return `${leftAlias}.${lk} == ${rightAlias}.${ref}`;
  }
  return '';
}

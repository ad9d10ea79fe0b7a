// Field-level differences between two versions of a record schema.
import type { JsonSchema } from '../api/types';
import { schemaFields } from './spec';
import type { SchemaField } from './spec';

export interface FieldChange {
  field: string;
  change: 'added' | 'removed' | 'changed';
  details: string[];
}

export function diffSchemas(before: JsonSchema | undefined, after: JsonSchema | undefined): FieldChange[] {
  const a = new Map(schemaFields(before).map((f) => [f.name, f]));
  const b = new Map(schemaFields(after).map((f) => [f.name, f]));
  const out: FieldChange[] = [];
  const describe = (f: SchemaField) => `${f.type}${f.required ? ', required' : ''}${f.pii ? ', PII' : ''}`;
  for (const [name, f] of b) {
    const old = a.get(name);
    if (!old) {
      out.push({ field: name, change: 'added', details: [describe(f)] });
      continue;
    }
    const details: string[] = [];
    if (old.type !== f.type) details.push(`type ${old.type} → ${f.type}`);
    if (old.required !== f.required) details.push(f.required ? 'now required' : 'now optional');
    if (old.pii !== f.pii) details.push(f.pii ? 'now marked PII' : 'no longer PII');
    if ((old.description ?? '') !== (f.description ?? '')) details.push('description changed');
    if (JSON.stringify(old.enum ?? null) !== JSON.stringify(f.enum ?? null)) details.push('allowed values changed');
    if (details.length) out.push({ field: name, change: 'changed', details });
  }
  for (const [name, f] of a) if (!b.has(name)) out.push({ field: name, change: 'removed', details: [describe(f)] });
  return out;
}

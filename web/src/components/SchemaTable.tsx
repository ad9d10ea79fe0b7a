import type { JsonSchema } from '../api/types';
import { schemaFields } from '../lib/spec';
import { PiiMark } from './common';

/** A record schema as a readable table: field, type, required, PII, description. */
export function SchemaTable({ schema, caption, masked }: { schema: JsonSchema | undefined | null; caption: string; masked?: string[] }) {
  const fields = schemaFields(schema);
  if (!fields.length) return <p className="muted">No fields are declared.</p>;
  return (
    <div className="table-wrap" tabIndex={0}>
      <table className="data-table">
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Field</th>
            <th scope="col">Type</th>
            <th scope="col">Required</th>
            <th scope="col">Personal data</th>
            <th scope="col">Description</th>
          </tr>
        </thead>
        <tbody>
          {fields.map((f) => (
            <tr key={f.name}>
              <th scope="row">
                <code>{f.name}</code>
              </th>
              <td>
                <code>{f.type}</code>
                {f.enum ? <div className="muted small">one of {f.enum.map(String).join(', ')}</div> : null}
              </td>
              <td>{f.required ? 'required' : <span className="muted">optional</span>}</td>
              <td>
                {f.pii ? <PiiMark /> : <span className="muted">—</span>}
                {masked?.includes(f.name) ? <span className="muted small"> masked for you</span> : null}
              </td>
              <td>{f.description ?? <span className="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

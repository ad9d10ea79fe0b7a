import { useState } from 'react';
import { Link, useParams } from 'react-router';
import { isMissingEndpoint } from '../api/client';
import { getDataset, getDatasetProducts, getSamples, listSchemaVersions } from '../api/endpoints';
import { isApiError } from '../api/problem';
import { can } from '../auth/roles';
import { useSession } from '../auth/session';
import type { JsonSchema, SampleRecord } from '../api/types';
import { Badge, ClassificationBadge, Empty, Facts, Loading, PhaseBadge, ProblemAlert, usePageTitle } from '../components/common';
import { cell } from '../components/PlanView';
import { SchemaTable } from '../components/SchemaTable';
import { Tabs } from '../components/Tabs';
import { formatTime } from '../lib/format';
import { diffSchemas } from '../lib/schemaDiff';
import { useAsync } from '../lib/useAsync';

function Versions({ name }: { name: string }) {
  const versions = useAsync((signal) => listSchemaVersions(name, signal), [name]);
  const list = versions.data ?? [];
  const latest = list.length ? list[list.length - 1].version : 0;
  const [from, setFrom] = useState<number | null>(null);
  const [to, setTo] = useState<number | null>(null);
  if (versions.loading) return <Loading label="Loading schema versions…" />;
  if (versions.error) return <ProblemAlert error={versions.error} title="Could not load the schema versions" />;
  if (!list.length) return <Empty>No versions recorded.</Empty>;
  const a = from ?? (list.length > 1 ? list[list.length - 2].version : latest);
  const b = to ?? latest;
  const va = list.find((v) => v.version === a);
  const vb = list.find((v) => v.version === b);
  const changes = diffSchemas(va?.schema as JsonSchema, vb?.schema as JsonSchema);
  return (
    <>
      <div className="table-wrap" tabIndex={0}>
        <table className="data-table compact">
          <caption>Schema versions</caption>
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Registered</th>
              <th scope="col">Fields</th>
            </tr>
          </thead>
          <tbody>
            {list.map((v) => (
              <tr key={v.version}>
                <th scope="row">v{v.version}</th>
                <td>{formatTime(v.createdAt)}</td>
                <td>{Object.keys((v.schema as JsonSchema | undefined)?.properties ?? {}).length}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h3>Compare versions</h3>
      <div className="inline-form">
        <div className="field">
          <label htmlFor="diff-from">From version</label>
          <select id="diff-from" value={a} onChange={(e) => setFrom(Number(e.target.value))}>
            {list.map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="diff-to">To version</label>
          <select id="diff-to" value={b} onChange={(e) => setTo(Number(e.target.value))}>
            {list.map((v) => (
              <option key={v.version} value={v.version}>
                v{v.version}
              </option>
            ))}
          </select>
        </div>
      </div>
      {a === b ? (
        <p className="muted">Choose two different versions to see what changed.</p>
      ) : changes.length === 0 ? (
        <p>No field changes between v{a} and v{b}.</p>
      ) : (
        <ul className="change-list" aria-label={`Changes from v${a} to v${b}`}>
          {changes.map((c) => (
            <li key={c.field}>
              <Badge tone={c.change === 'added' ? 'success' : c.change === 'removed' ? 'danger' : 'warning'}>{c.change}</Badge>{' '}
              <code>{c.field}</code> {c.details.join(', ')}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function Samples({ name }: { name: string }) {
  const [limit, setLimit] = useState(10);
  const samples = useAsync((signal) => getSamples(name, limit, signal), [name, limit]);
  const controls = (
    <div className="inline-form">
      <div className="field">
        <label htmlFor="sample-limit">Records</label>
        <select id="sample-limit" value={limit} onChange={(e) => setLimit(Number(e.target.value))}>
          {[5, 10, 25, 50, 100].map((n) => (
            <option key={n} value={n}>
              latest {n}
            </option>
          ))}
        </select>
      </div>
      <button type="button" className="btn btn-secondary" onClick={samples.reload}>
        Refresh samples
      </button>
    </div>
  );
  if (samples.loading) return (<>{controls}<Loading label="Reading the latest records…" /></>);
  if (samples.error) {
    if (isMissingEndpoint(samples.error))
      return <Empty>This server does not offer sample records yet.</Empty>;
    if (isApiError(samples.error) && samples.error.status === 503)
      return (<>{controls}<Empty>Sample records are unavailable: Kafka is not configured or not answering.</Empty></>);
    return (<>{controls}<ProblemAlert error={samples.error} title="Could not read sample records" /></>);
  }
  const data = samples.data!;
  const masked = new Set(data.masked ?? []);
  const records: SampleRecord[] = data.records ?? [];
  const cols = Array.from(new Set(records.flatMap((r) => (r.value && typeof r.value === 'object' ? Object.keys(r.value as object) : ['value']))));
  return (
    <>
      {controls}
      <p className="muted">
        From topic <code>{data.topic}</code>, newest first.
        {masked.size ? (
          <>
            {' '}
            <span className="masked-note">
              Masked for you: {[...masked].map((m) => <code key={m}>{m} </code>)}(personal data; shown as •••).
            </span>
          </>
        ) : null}
      </p>
      {records.length === 0 ? (
        <Empty>The topic holds no records.</Empty>
      ) : (
        <div className="table-wrap" tabIndex={0}>
          <table className="data-table compact">
            <caption className="sr-only">Sample records</caption>
            <thead>
              <tr>
                <th scope="col">Partition / offset</th>
                <th scope="col">Time</th>
                <th scope="col">Key</th>
                {cols.map((c) => (
                  <th scope="col" key={c}>
                    {c} {masked.has(c) ? <span className="badge badge-pii">masked</span> : null}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {records.map((r) => (
                <tr key={`${r.partition}-${r.offset}`}>
                  <td>
                    {r.partition} / {r.offset}
                  </td>
                  <td>{formatTime(r.timestamp)}</td>
                  <td>{cell(r.key)}</td>
                  {cols.map((c) => (
                    <td key={c}>{cell(r.value && typeof r.value === 'object' ? (r.value as Record<string, unknown>)[c] : r.value)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function Lineage({ name }: { name: string }) {
  const products = useAsync((signal) => getDatasetProducts(name, signal), [name]);
  if (products.loading) return <Loading label="Loading the products built on this dataset…" />;
  if (products.error) {
    if (isMissingEndpoint(products.error))
      return <Empty>This server does not offer lineage yet.</Empty>;
    return <ProblemAlert error={products.error} title="Could not load the products built on this dataset" />;
  }
  const items = products.data?.items ?? [];
  if (!items.length) return <Empty>No product reads this dataset yet.</Empty>;
  return (
    <div className="table-wrap" tabIndex={0}>
      <table className="data-table compact">
        <caption className="sr-only">Products built on {name}</caption>
        <thead>
          <tr>
            <th scope="col">Product</th>
            <th scope="col">Phase</th>
          </tr>
        </thead>
        <tbody>
          {items.map((p) => (
            <tr key={`${p.team}/${p.name}`}>
              <th scope="row">
                <Link to={`/products/${encodeURIComponent(p.team)}/${encodeURIComponent(p.name)}`}>
                  {p.team}/{p.name}
                </Link>
              </th>
              <td>
                <PhaseBadge phase={p.phase} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function DatasetPage() {
  const { name = '' } = useParams();
  const { me } = useSession();
  usePageTitle(name);
  const ds = useAsync((signal) => getDataset(name, signal), [name]);
  const [tab, setTab] = useState('schema');
  if (ds.loading) return <Loading label={`Loading ${name}…`} />;
  if (ds.error)
    return (
      <>
        <h1>{name}</h1>
        <ProblemAlert error={ds.error} title={isApiError(ds.error) && ds.error.status === 404 ? 'No such dataset' : 'Could not load the dataset'} />
        <p>
          <Link to="/catalog">Back to the catalog</Link>
        </p>
      </>
    );
  const d = ds.data!;
  return (
    <>
      <nav aria-label="Breadcrumb" className="breadcrumb">
        <Link to="/catalog">Catalog</Link> / <span aria-current="page">{d.metadata.name}</span>
      </nav>
      <div className="page-head">
        <div className="title-row">
          <h1>{d.metadata.name}</h1>
          <ClassificationBadge value={d.spec.classification ?? undefined} />
        </div>
        {d.metadata.description ? <p className="lede">{d.metadata.description}</p> : null}
      </div>
      {can.requestProducts(me) ? (
        <p>
          <Link className="btn btn-secondary" to={`/request?dataset=${encodeURIComponent(d.metadata.name)}`}>
            Request a product from {d.metadata.name}
          </Link>
        </p>
      ) : null}
      <Facts
        items={[
          ['Owner', d.metadata.owner ?? '—'],
          ['Topic', <code key="t">{d.spec.topic}</code>],
          ['Kind', d.spec.kind === 'table' ? 'table (latest record per key)' : 'stream (every record is an event)'],
          ['Key', d.spec.key ? <code key="k">{d.spec.key}</code> : '—'],
          ['Event time', d.spec.timestampField ? <code key="ts">{d.spec.timestampField}</code> : 'Kafka record time'],
          ['Compatibility', d.spec.compatibility ?? '—'],
          ['Tags', (d.metadata.tags ?? []).join(', ') || '—'],
        ]}
      />
      <Tabs
        label="Dataset details"
        active={tab}
        onChange={setTab}
        keepMounted={false}
        tabs={[
          { id: 'schema', label: 'Schema', content: <SchemaTable schema={d.spec.schema as JsonSchema} caption={`Fields of ${d.metadata.name}`} /> },
          { id: 'versions', label: 'Versions', content: <Versions name={name} /> },
          { id: 'samples', label: 'Samples', content: <Samples name={name} /> },
          { id: 'products', label: 'Products', content: <Lineage name={name} /> },
        ]}
      />
    </>
  );
}

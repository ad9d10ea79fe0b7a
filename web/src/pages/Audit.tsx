import { useCallback, useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router';
import { listAudit, verifyAudit } from '../api/endpoints';
import type { AuditQuery } from '../api/endpoints';
import type { AuditEntry, AuditVerification } from '../api/types';
import { Badge, Empty, Loading, ProblemAlert, usePageTitle } from '../components/common';
import { formatTime } from '../lib/format';

const PAGE = 100;
const KINDS = ['', 'DataProduct', 'Dataset', 'TargetCluster', 'Token', 'AuditLog'];
const FILTERS = ['kind', 'team', 'name', 'actor', 'since', 'until'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

/** `datetime-local` text (local time) → RFC 3339 (UTC); '' stays ''. */
export function localToRfc3339(v: string): string {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

function rfc3339ToLocal(v: string): string {
  if (!v) return '';
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// The verification is itself an audited action: run once per page load of the console.
let lastVerification: { at: number; result: AuditVerification } | null = null;

function VerifyBadge() {
  const [result, setResult] = useState<AuditVerification | null>(lastVerification?.result ?? null);
  const [at, setAt] = useState<number | null>(lastVerification?.at ?? null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = useCallback(async () => {
    setBusy(true);
    setError(null);
    try {
      const r = await verifyAudit();
      lastVerification = { at: Date.now(), result: r };
      setResult(r);
      setAt(lastVerification.at);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }, []);
  useEffect(() => {
    if (!lastVerification) void run();
  }, [run]);
  return (
    <div className="verify-box" aria-live="polite">
      <span className="verify-label">Chain verification:</span>{' '}
      {busy && !result ? (
        <Badge tone="neutral">verifying…</Badge>
      ) : result ? (
        result.ok ? (
          <Badge tone="success">intact: {result.entries} entries verified</Badge>
        ) : (
          <Badge tone="danger">
            broken at entry {result.firstBroken?.seq} ({result.firstBroken?.reason})
          </Badge>
        )
      ) : error ? (
        <Badge tone="danger">could not verify</Badge>
      ) : null}
      {at ? <span className="small muted"> checked {formatTime(at)}</span> : null}{' '}
      <button type="button" className="btn btn-small btn-secondary" onClick={run} disabled={busy}>
        {busy ? 'Verifying…' : 'Verify again'}
      </button>
      <ProblemAlert error={error} title="The verification failed" />
    </div>
  );
}

function Entry({ e }: { e: AuditEntry }) {
  const object = e.kind ? `${e.kind} ${e.team ? `${e.team}/` : ''}${e.name}` : '—';
  const link = e.kind === 'DataProduct' && e.team ? `/products/${encodeURIComponent(e.team)}/${encodeURIComponent(e.name)}` : e.kind === 'Dataset' ? `/catalog/${encodeURIComponent(e.name)}` : null;
  return (
    <tr>
      <td>{e.seq}</td>
      <td>
        <time dateTime={e.time}>{formatTime(e.time)}</time>
      </td>
      <td className="small">{e.actor}</td>
      <td>
        <Badge>{e.action}</Badge>
      </td>
      <td>{link ? <Link to={link}>{object}</Link> : object}</td>
      <td>{e.generation ?? '—'}</td>
      <td>{e.outcome}</td>
      <td>
        {e.diff !== null && e.diff !== undefined && e.diff !== '' ? (
          <details className="disclosure compact">
            <summary>
              Details<span className="sr-only"> of entry {e.seq}</span>
            </summary>
            <pre className="code-block small">{typeof e.diff === 'string' ? e.diff : JSON.stringify(e.diff, null, 2)}</pre>
            <p className="small muted">
              Request <code>{e.requestId}</code>
              {e.hash ? (
                <>
                  {' '}
                  · hash <code>{e.hash.slice(0, 16)}…</code>
                </>
              ) : null}
            </p>
          </details>
        ) : null}
      </td>
    </tr>
  );
}

export function Audit() {
  usePageTitle('Audit log');
  const [params, setParams] = useSearchParams();
  const applied: Filters = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) ?? ''])) as Filters;
  const [form, setForm] = useState<Filters>({ ...applied, since: rfc3339ToLocal(applied.since), until: rfc3339ToLocal(applied.until) });
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [more, setMore] = useState(false);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const key = FILTERS.map((k) => applied[k]).join('|');

  const fetchPage = useCallback(
    async (after?: number, signal?: AbortSignal) => {
      const q: AuditQuery = { limit: PAGE, after };
      for (const k of FILTERS) if (applied[k]) q[k] = applied[k];
      return listAudit(q, signal);
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [key],
  );

  useEffect(() => {
    const ctrl = new AbortController();
    setLoading(true);
    setError(null);
    fetchPage(undefined, ctrl.signal)
      .then((page) => {
        setEntries(page);
        setMore(page.length === PAGE);
        setLoading(false);
      })
      .catch((e: unknown) => {
        if (!ctrl.signal.aborted) {
          setError(e);
          setLoading(false);
        }
      });
    return () => ctrl.abort();
  }, [fetchPage]);

  const loadMore = async () => {
    setLoading(true);
    try {
      const page = await fetchPage(entries[entries.length - 1]?.seq);
      setEntries((prev) => [...prev, ...page]);
      setMore(page.length === PAGE);
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  };

  const apply = (e: FormEvent) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const k of FILTERS) {
      const v = k === 'since' || k === 'until' ? localToRfc3339(form[k]) : form[k].trim();
      if (v) next.set(k, v);
    }
    setParams(next);
  };
  const clear = () => {
    setForm({ kind: '', team: '', name: '', actor: '', since: '', until: '' });
    setParams(new URLSearchParams());
  };
  const input = (k: (typeof FILTERS)[number], label: string, type = 'text') => (
    <div className="field">
      <label htmlFor={`af-${k}`}>{label}</label>
      <input id={`af-${k}`} type={type} value={form[k]} onChange={(e) => setForm({ ...form, [k]: e.target.value })} />
    </div>
  );

  return (
    <>
      <div className="page-head">
        <h1>Audit log</h1>
        <p className="lede">Every change, by people and by the controller, in an append-only hash chain. Oldest first.</p>
      </div>
      <VerifyBadge />
      <form className="filters" onSubmit={apply} aria-label="Filter the audit log">
        <div className="field">
          <label htmlFor="af-kind">Kind</label>
          <select id="af-kind" value={form.kind} onChange={(e) => setForm({ ...form, kind: e.target.value })}>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {k || 'any'}
              </option>
            ))}
          </select>
        </div>
        {input('team', 'Team')}
        {input('name', 'Name')}
        {input('actor', 'Actor')}
        {input('since', 'Since', 'datetime-local')}
        {input('until', 'Until', 'datetime-local')}
        <div className="button-row">
          <button type="submit" className="btn btn-primary">
            Apply filters
          </button>
          <button type="button" className="btn btn-secondary" onClick={clear}>
            Clear
          </button>
        </div>
      </form>
      <p className="hint">The actor must match exactly as recorded, e.g. <code>alice@example.com (requester@team-payments)</code>.</p>
      <ProblemAlert error={error} title="Could not load the audit log" />
      {!loading && !error && entries.length === 0 ? <Empty>No entries match.</Empty> : null}
      {entries.length > 0 ? (
        <div className="table-wrap" tabIndex={0}>
          <table className="data-table compact audit-table">
            <caption className="sr-only">Audit entries</caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Time</th>
                <th scope="col">Actor</th>
                <th scope="col">Action</th>
                <th scope="col">Object</th>
                <th scope="col">Generation</th>
                <th scope="col">Outcome</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <Entry key={e.seq} e={e} />
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {loading ? <Loading label="Loading entries…" /> : null}
      {more && !loading ? (
        <button type="button" className="btn btn-secondary" onClick={loadMore}>
          Load more
        </button>
      ) : null}
    </>
  );
}

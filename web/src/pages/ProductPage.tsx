import { useEffect, useState } from 'react';
import { stringify } from 'yaml';
import { Link, useLocation, useParams } from 'react-router';
import { deleteProduct, getCredentials, getProduct, listAudit, verifyProduct } from '../api/endpoints';
import { isMissingEndpoint } from '../api/client';
import { isApiError } from '../api/problem';
import type { AuditEntry, Credentials, DataProduct, DataProductStatus } from '../api/types';
import { can } from '../auth/roles';
import { useSession } from '../auth/session';
import { Badge, copyText, Empty, Facts, Loading, PhaseBadge, ProblemAlert, ProgressBar, usePageTitle } from '../components/common';
import { Sparkline } from '../components/Sparkline';
import { formatCount, formatDuration, formatMs, formatRate, formatTime, relativeTime } from '../lib/format';
import { useAsync } from '../lib/useAsync';
import { throughput, useLiveStatus, WINDOW_MS } from '../lib/useLiveStatus';
import type { StatusSample } from '../lib/useLiveStatus';

function Backfill({ status }: { status: DataProductStatus }) {
  const bf = status.backfill ?? [];
  if (!bf.length)
    return (
      <p className="muted">
        {['Approved', 'Provisioning', 'Backfilling'].includes(status.phase)
          ? 'The backfill is starting: progress shows once the job reports it.'
          : 'No backfill is running or recorded.'}
      </p>
    );
  return (
    <div className="stack-tight">
      {bf.map((b) => (
        <ProgressBar
          key={b.source}
          label={`Source ${b.source}`}
          done={b.done}
          total={b.total}
          detail={
            <>
              {formatCount(b.done)} of {formatCount(b.total)} events
              {b.done >= b.total ? ' · complete' : ` · ${formatRate(b.rate)}`}
              {b.etaSeconds !== null && b.etaSeconds !== undefined && b.done < b.total ? ` · about ${formatDuration(b.etaSeconds)} left` : ''}
            </>
          }
        />
      ))}
    </div>
  );
}

function Metrics({ samples }: { samples: StatusSample[] }) {
  const now = samples.length ? samples[samples.length - 1].t : Date.now();
  const lag = samples.filter((s) => s.lagMs !== null).map((s) => ({ t: s.t, v: s.lagMs as number }));
  const dl = samples.filter((s) => s.deadLetters !== null).map((s) => ({ t: s.t, v: s.deadLetters as number }));
  const tp = throughput(samples);
  return (
    <div className="metrics">
      <Sparkline label="Lag" points={lag} format={(v) => formatMs(v)} now={now} windowMs={WINDOW_MS} />
      <Sparkline label="Throughput" points={tp} format={(v) => formatRate(v)} now={now} windowMs={WINDOW_MS} />
      <Sparkline label="Dead letters" points={dl} format={(v) => formatCount(v)} now={now} windowMs={WINDOW_MS} />
    </div>
  );
}

function CredentialsPanel({ team, name }: { team: string; name: string }) {
  const [creds, setCreds] = useState<Credentials | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [reveal, setReveal] = useState(false);
  const [copied, setCopied] = useState('');
  useEffect(() => {
    if (!copied) return;
    const t = setTimeout(() => setCopied(''), 2500);
    return () => clearTimeout(t);
  }, [copied]);
  const load = async () => {
    setLoading(true);
    setError(null);
    try {
      setCreds(await getCredentials(team, name));
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  };
  if (!creds) {
    return (
      <>
        <button type="button" className="btn btn-secondary" onClick={load} disabled={loading}>
          {loading ? 'Loading…' : 'Show credentials'}
        </button>
        {error ? (
          isMissingEndpoint(error) ? (
            <p className="muted">This server does not hand out credentials through the API yet.</p>
          ) : isApiError(error) && error.status === 403 ? (
            <p className="alert alert-warning" role="alert">
              Only owners of {team} and admins may see these credentials.
            </p>
          ) : (
            <ProblemAlert error={error} title="Could not load the credentials" />
          )
        ) : null}
      </>
    );
  }
  const t = creds.target;
  const copy = async (what: string, text: string) => setCopied((await copyText(text)) ? `${what} copied.` : `Could not copy the ${what.toLowerCase()}.`);
  return (
    <div className="credentials">
      <Facts
        items={[
          ['Type', t.type],
          ['Cluster', t.cluster],
          ['Host', <code key="h">{`${t.host}:${t.port}`}</code>],
          ['Database', t.database ? <code key="d">{t.database}</code> : null],
          ['Object', <code key="o">{t.object}</code>],
          ['Username', creds.username ? <code key="u">{creds.username}</code> : '—'],
        ]}
      />
      {creds.password ? (
        <div className="field password-row">
          <label htmlFor="cred-password">Password</label>
          <input id="cred-password" type={reveal ? 'text' : 'password'} readOnly value={creds.password} className="mono" autoComplete="off" />
          <button type="button" className="btn btn-small btn-secondary" aria-pressed={reveal} onClick={() => setReveal(!reveal)}>
            {reveal ? 'Hide password' : 'Reveal password'}
          </button>
          <button type="button" className="btn btn-small btn-secondary" onClick={() => copy('Password', creds.password!)}>
            Copy password
          </button>
        </div>
      ) : (
        <p className="muted">No password: the target needs none for this reader.</p>
      )}
      <span role="status" className="small muted">
        {copied}
      </span>
    </div>
  );
}

function History({ team, name }: { team: string; name: string }) {
  const audit = useAsync(
    async (signal) => {
      // Oldest first from the API; show the newest first.
      const all: AuditEntry[] = [];
      let after: number | undefined;
      for (let i = 0; i < 10; i++) {
        const page = await listAudit({ kind: 'DataProduct', team, name, after, limit: 1000 }, signal);
        all.push(...page);
        if (page.length < 1000) break;
        after = page[page.length - 1].seq;
      }
      return all.reverse();
    },
    [team, name],
  );
  const entries = audit.data ?? [];
  if (audit.loading) return <Loading label="Loading history…" />;
  if (audit.error) return <ProblemAlert error={audit.error} title="Could not load the history" />;
  if (!entries.length) return <Empty>No history recorded.</Empty>;
  return (
    <ol className="timeline" aria-label={`History of ${team}/${name}`}>
      {entries.slice(0, 100).map((e) => (
        <li key={e.seq}>
          <time dateTime={e.time}>{formatTime(e.time)}</time> <Badge>{e.action}</Badge> {e.outcome}
          {e.generation !== null ? <span className="muted"> · generation {e.generation}</span> : null}
          <div className="small muted">by {e.actor}</div>
        </li>
      ))}
    </ol>
  );
}

function Live({ product }: { product: DataProduct }) {
  const team = product.metadata.team ?? '';
  const name = product.metadata.name;
  const { me } = useSession();
  const live = useLiveStatus(team, name, product.status);
  const status = live.status;
  const [actionMsg, setActionMsg] = useState('');
  const [actionError, setActionError] = useState<unknown>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [, setTick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setTick((x) => x + 1), 15000);
    return () => clearInterval(t);
  }, []);

  const verify = async () => {
    setActionError(null);
    setActionMsg('Verifying…');
    try {
      await verifyProduct(team, name);
      setActionMsg('Verified: the result is recorded on the status (condition Verified).');
    } catch (e) {
      setActionMsg('');
      setActionError(e);
    }
  };
  const remove = async () => {
    setActionError(null);
    try {
      await deleteProduct(team, name);
      setConfirmDelete(false);
      setActionMsg(`Deletion requested: the controller tears ${team}/${name} down (${product.spec.deletionPolicy === 'Retain' ? 'the target is retained' : 'the target is deleted'}).`);
    } catch (e) {
      setActionError(e);
    }
  };

  const modeText =
    live.mode === 'stream' ? 'Live updates: streaming' : live.mode === 'polling' ? 'Live updates: polling every 2 s' : live.mode === 'ended' ? 'Live updates: stopped' : 'Live updates: connecting…';
  const target = status?.target;
  const conditions = status?.conditions ?? [];
  // Before approval, who must decide matters more than progress.
  const pending = status?.phase === 'PendingApproval' || status?.phase === 'Rejected';

  const connectionPanels = (
    <>
      <div className="grid-2 product-grid">
        <section className="card" aria-labelledby="sec-connection">
          <h2 id="sec-connection">Connection</h2>
          {target ? (
            <Facts
              items={[
                ['Version', `v${target.version} (generation ${target.generation})`],
                ['Read from', target.location ?? '—'],
                ['Reader', target.reader ? <code key="r">{target.reader}</code> : '—'],
                ['Output topic', target.topic ? <code key="t">{target.topic}</code> : '—'],
                ['Target cluster', product.spec.target.cluster ?? product.spec.target.dedicated?.type ?? '—'],
              ]}
            />
          ) : (
            <p className="muted">Not provisioned yet.</p>
          )}
          {target && can.credentials(me, team) ? <CredentialsPanel team={team} name={name} /> : null}
          {target && !can.credentials(me, team) ? <p className="small muted">Owners of {team} can see the reader's credentials here.</p> : null}
        </section>
        <section className="card" aria-labelledby="sec-approval">
          <h2 id="sec-approval">Approval</h2>
          {status?.approval ? (
            <>
              <p className="small">
                Generation {status.approval.generation}, requested by {status.approval.requestedBy}
              </p>
              <ul className="plain">
                {status.approval.required.map((r) => {
                  const g = status.approval?.granted?.find((x) => x.approver === r);
                  return (
                    <li key={r}>
                      {g ? <Badge tone="success">given</Badge> : <Badge tone="warning">needed</Badge>} {r}
                      {g ? <span className="small muted"> by {g.by}{g.comment ? `: “${g.comment}”` : ''}</span> : null}
                    </li>
                  );
                })}
              </ul>
              {status.approval.rejected ? (
                <p className="alert alert-error">
                  Rejected by {status.approval.rejected.by}
                  {status.approval.rejected.comment ? `: “${status.approval.rejected.comment}”` : ''}
                </p>
              ) : null}
            </>
          ) : (
            <p className="muted">No approval recorded.</p>
          )}
        </section>
      </div>

    </>
  );
  const statusPanels = (
    <>
      <div className="grid-2 product-grid">
        <section className="card" aria-labelledby="sec-backfill">
          <h2 id="sec-backfill">Backfill</h2>
          {status ? <Backfill status={status} /> : <Loading />}
        </section>
        <section className="card" aria-labelledby="sec-metrics">
          <h2 id="sec-metrics">Live metrics</h2>
          <Metrics samples={live.samples} />
          <Facts
            items={[
              ['Lag now', formatMs(status?.lagMs)],
              ['Dead letters', formatCount(status?.deadLetters)],
            ]}
          />
        </section>
      </div>

      <section className="card" aria-labelledby="sec-conditions">
        <h2 id="sec-conditions">Conditions</h2>
        {conditions.length === 0 ? (
          <p className="muted">No conditions yet.</p>
        ) : (
          <div className="table-wrap" tabIndex={0}>
            <table className="data-table compact">
              <caption className="sr-only">Conditions</caption>
              <thead>
                <tr>
                  <th scope="col">Condition</th>
                  <th scope="col">Status</th>
                  <th scope="col">Reason</th>
                  <th scope="col">Message</th>
                  <th scope="col">Since</th>
                </tr>
              </thead>
              <tbody>
                {conditions.map((c) => (
                  <tr key={c.type}>
                    <th scope="row">{c.type}</th>
                    <td>
                      <Badge tone={c.status === 'True' ? 'success' : c.status === 'False' ? 'danger' : 'neutral'}>{c.status}</Badge>
                    </td>
                    <td>{c.reason ?? '—'}</td>
                    <td className="small">{c.message ?? ''}</td>
                    <td className="small">
                      <time dateTime={c.lastTransitionTime} title={formatTime(c.lastTransitionTime)}>
                        {relativeTime(c.lastTransitionTime)}
                      </time>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

    </>
  );

  return (
    <>
      <div className="product-summary">
        <p className="phase-line">
          Phase: <PhaseBadge phase={live.deleted ? 'Deleting' : status?.phase} testId="phase" />{' '}
          <span className="muted small" data-testid="live-mode">
            {modeText}
          </span>
        </p>
        {status?.message ? <p className="status-message">{status.message}</p> : null}
        {live.deleted ? (
          <p className="alert alert-info" role="status">
            The product was deleted. <Link to="/products">Back to products</Link>
          </p>
        ) : null}
        {live.error && !live.deleted ? <ProblemAlert error={live.error} title="Live updates failed" /> : null}
        {status?.approvedGeneration && product.metadata.generation && status.approvedGeneration < product.metadata.generation ? (
          <p className="alert alert-info" role="note">
            Generation {product.metadata.generation} waits for approval; generation {status.approvedGeneration} keeps running.
          </p>
        ) : null}
      </div>
      <div className="button-row">
        {can.writeProduct(me, team) ? (
          <Link className="btn btn-secondary" to={`/products/${encodeURIComponent(team)}/${encodeURIComponent(name)}/edit`}>
            Change
          </Link>
        ) : null}
        {can.verifyProduct(me, team) ? (
          <button type="button" className="btn btn-secondary" onClick={verify}>
            Verify
          </button>
        ) : null}
        {can.writeProduct(me, team) ? (
          <button type="button" className="btn btn-danger-outline" onClick={() => setConfirmDelete(true)}>
            Delete
          </button>
        ) : null}
      </div>
      {confirmDelete ? (
        <div className="alert alert-warning" role="alertdialog" aria-labelledby="confirm-delete-title">
          <p id="confirm-delete-title" className="alert-title">
            Delete {team}/{name}?
          </p>
          <p>
            The job and topics go{product.spec.deletionPolicy === 'Retain' ? '; the target is retained' : ', and so does the target and its data'}.
          </p>
          <div className="button-row">
            <button type="button" className="btn btn-danger" onClick={remove} autoFocus>
              Delete {team}/{name}
            </button>
            <button type="button" className="btn btn-secondary" onClick={() => setConfirmDelete(false)}>
              Cancel
            </button>
          </div>
        </div>
      ) : null}
      <p role="status" className={actionMsg ? 'alert alert-info' : 'sr-only'}>
        {actionMsg}
      </p>
      <ProblemAlert error={actionError} title="The action failed" />

      {pending ? (
        <>
          {connectionPanels}
          {statusPanels}
        </>
      ) : (
        <>
          {statusPanels}
          {connectionPanels}
        </>
      )}
      <section className="card" aria-labelledby="sec-spec">
        <h2 id="sec-spec">Spec</h2>
        <pre className="code-block" tabIndex={0} aria-label="Product spec as YAML">
          {stringify({ metadata: { name, team, description: product.metadata.description ?? undefined }, spec: product.spec }, { lineWidth: 0 })}
        </pre>
      </section>

      <section className="card" aria-labelledby="sec-history">
        <h2 id="sec-history">History</h2>
        {can.readAudit(me) ? <History team={team} name={name} /> : <p className="muted">The history is in the audit log, which admins and auditors can read.</p>}
      </section>
    </>
  );
}

export function ProductPage() {
  const { team = '', name = '' } = useParams();
  usePageTitle(`${team}/${name}`);
  const location = useLocation();
  const flash = (location.state as { flash?: string } | null)?.flash;
  const product = useAsync((signal) => getProduct(team, name, signal), [team, name]);
  return (
    <>
      <nav aria-label="Breadcrumb" className="breadcrumb">
        <Link to="/products">Products</Link> / <span aria-current="page">{`${team}/${name}`}</span>
      </nav>
      <div className="page-head">
        <h1>
          {team}/{name}
        </h1>
        {product.data?.metadata.description ? <p className="lede">{product.data.metadata.description}</p> : null}
      </div>
      {flash ? (
        <p className="alert alert-success" role="status">
          {flash}
        </p>
      ) : null}
      {product.loading ? <Loading label="Loading the product…" /> : null}
      <ProblemAlert error={product.error} title={isApiError(product.error) && product.error.status === 404 ? 'No such product' : 'Could not load the product'} />
      {product.data ? <Live key={`${team}/${name}`} product={product.data} /> : null}
    </>
  );
}

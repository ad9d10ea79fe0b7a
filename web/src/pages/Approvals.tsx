import { useState } from 'react';
import { Link } from 'react-router';
import { approveProduct, getStoredPlan, listApprovals, listDatasets, rejectProduct } from '../api/endpoints';
import type { DataProduct, Dataset, ProductSpecDraft } from '../api/types';
import { useSession } from '../auth/session';
import { Badge, ClassificationBadge, Empty, Loading, PiiMark, ProblemAlert, usePageTitle } from '../components/common';
import { SpecDiff } from '../components/DiffView';
import { PlanView } from '../components/PlanView';
import { formatTime } from '../lib/format';
import { piiFieldsTaken } from '../lib/spec';
import { useAsync } from '../lib/useAsync';

function PlanDisclosure({ team, name }: { team: string; name: string }) {
  const [open, setOpen] = useState(false);
  return (
    <details className="disclosure" onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>Plan: output schema, target, backfill</summary>
      {open ? <PlanLoader team={team} name={name} /> : null}
    </details>
  );
}

function PlanLoader({ team, name }: { team: string; name: string }) {
  const plan = useAsync((signal) => getStoredPlan(team, name, signal), [team, name]);
  if (plan.loading) return <Loading label="Planning…" />;
  if (plan.error) return <ProblemAlert error={plan.error} title="Could not load the plan" />;
  return <PlanView plan={plan.data!} />;
}

function Request({ p, datasets, onDecided }: { p: DataProduct; datasets: Dataset[]; onDecided: (msg: string) => void }) {
  const { me } = useSession();
  const team = p.metadata.team ?? '';
  const name = p.metadata.name;
  const id = `${team}/${name}`;
  const approval = p.status?.approval;
  const generation = approval?.generation ?? p.metadata.generation ?? undefined;
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState<'' | 'approve' | 'reject'>('');
  const [error, setError] = useState<unknown>(null);
  const [commentError, setCommentError] = useState('');
  const ownRequest = !!me && !!approval?.requestedBy && approval.requestedBy.startsWith(`${me.name} (`);
  const byName = new Map(datasets.map((d) => [d.metadata.name, d]));
  const spec = p.spec as ProductSpecDraft;
  const classified = (spec.sources ?? [])
    .map((s) => ({ s, d: byName.get(s.dataset ?? '') }))
    .filter(({ d }) => d && ['confidential', 'restricted'].includes(d.spec.classification ?? ''));
  const pii = piiFieldsTaken(spec, datasets);
  const running = p.status?.target?.spec ?? p.status?.approvedSpec ?? null;
  const granted = approval?.granted ?? [];
  const headingId = `req-${team}-${name}`;

  const decide = async (kind: 'approve' | 'reject') => {
    setError(null);
    if (kind === 'reject' && !comment.trim()) {
      setCommentError('Say why: a rejection needs a comment.');
      return;
    }
    setCommentError('');
    setBusy(kind);
    try {
      if (kind === 'approve') {
        const res = await approveProduct(team, name, { comment: comment.trim() || undefined, generation });
        onDecided(`Approved ${id}. ${res.status?.message ?? ''}`);
      } else {
        await rejectProduct(team, name, { comment: comment.trim(), generation });
        onDecided(`Rejected ${id}.`);
      }
    } catch (e) {
      setError(e);
    } finally {
      setBusy('');
    }
  };

  return (
    <article className="card request" aria-labelledby={headingId}>
      <header className="card-head">
        <h2 id={headingId}>
          <Link to={`/products/${encodeURIComponent(team)}/${encodeURIComponent(name)}`}>{id}</Link>{' '}
          <span className="muted small">generation {generation}</span>
        </h2>
        {running ? <Badge tone="warning">change to a running product</Badge> : <Badge tone="info">new product</Badge>}
      </header>
      {p.metadata.description ? <p>{p.metadata.description}</p> : null}
      <p className="small">
        Requested by <strong>{approval?.requestedBy ?? 'unknown'}</strong>
        {p.metadata.creationTimestamp ? <> · created {formatTime(p.metadata.creationTimestamp)}</> : null}
      </p>
      <div className="grid-2">
        <section aria-label={`What ${id} asks for`}>
          <h3>What is asked</h3>
          <ul className="plain">
            {(spec.sources ?? []).map((s) => {
              const d = byName.get(s.dataset ?? '');
              return (
                <li key={s.name}>
                  <code>{s.name}</code> = <Link to={`/catalog/${encodeURIComponent(s.dataset ?? '')}`}>{s.dataset}</Link>{' '}
                  <ClassificationBadge value={d?.spec.classification ?? undefined} /> {s.from ? <span className="muted small">from {s.from}</span> : null}
                </li>
              );
            })}
          </ul>
          <p className="small">
            {Object.keys(spec.fields ?? {}).length} field(s) into <code>{spec.target?.cluster ?? spec.target?.dedicated?.type}</code> /{' '}
            <code>{spec.target?.name}</code> ({spec.target?.mode ?? 'upsert'})
          </p>
          {classified.length || pii.length ? (
            <div className="sensitive">
              <h4>Sensitive data</h4>
              <ul className="plain">
                {classified.map(({ s, d }) => (
                  <li key={s.name}>
                    <ClassificationBadge value={d!.spec.classification ?? undefined} /> {s.dataset} (owner {d!.metadata.owner})
                  </li>
                ))}
                {pii.map((f) => (
                  <li key={`${f.alias}.${f.field}`}>
                    <PiiMark /> <code>{`${f.alias}.${f.field}`}</code> of {f.dataset}
                  </li>
                ))}
              </ul>
            </div>
          ) : (
            <p className="small muted">No classified source and no personal data.</p>
          )}
        </section>
        <section aria-label={`Approvals of ${id}`}>
          <h3>Approvals</h3>
          <ul className="plain">
            {(approval?.required ?? []).map((r) => {
              const g = granted.find((x) => x.approver === r);
              return (
                <li key={r}>
                  {g ? <Badge tone="success">given</Badge> : <Badge tone="warning">needed</Badge>} <strong>{r}</strong>
                  {g ? (
                    <span className="small muted">
                      {' '}
                      by {g.by}
                      {g.comment ? `: “${g.comment}”` : ''}
                    </span>
                  ) : null}
                </li>
              );
            })}
          </ul>
          {approval?.reasons?.length ? (
            <>
              <h4>Why</h4>
              <ul className="small">
                {approval.reasons.map((r, i) => (
                  <li key={i}>{r}</li>
                ))}
              </ul>
            </>
          ) : null}
        </section>
      </div>
      {running ? (
        <details className="disclosure" open>
          <summary>Diff against the running generation</summary>
          <SpecDiff before={running} after={p.spec} label={`Spec changes of ${id}`} />
        </details>
      ) : null}
      <PlanDisclosure team={team} name={name} />
      <div className="decision">
        {ownRequest ? (
          <p className="alert alert-info" role="note">
            You requested this generation, so someone else must decide it.
          </p>
        ) : null}
        <div className="field">
          <label htmlFor={`comment-${team}-${name}`}>Comment on {id}</label>
          <textarea
            id={`comment-${team}-${name}`}
            rows={2}
            value={comment}
            aria-invalid={commentError ? true : undefined}
            aria-describedby={commentError ? `comment-${team}-${name}-error` : undefined}
            onChange={(e) => setComment(e.target.value)}
          />
          {commentError ? (
            <p className="field-error" id={`comment-${team}-${name}-error`}>
              {commentError}
            </p>
          ) : null}
        </div>
        <ProblemAlert error={error} title="The decision was not recorded" />
        <div className="button-row">
          <button type="button" className="btn btn-primary" disabled={!!busy || ownRequest} aria-label={`Approve ${id}`} onClick={() => decide('approve')}>
            {busy === 'approve' ? 'Approving…' : 'Approve'}
          </button>
          <button type="button" className="btn btn-danger" disabled={!!busy || ownRequest} aria-label={`Reject ${id}`} onClick={() => decide('reject')}>
            {busy === 'reject' ? 'Rejecting…' : 'Reject'}
          </button>
        </div>
      </div>
    </article>
  );
}

export function Approvals() {
  usePageTitle('Approvals');
  const inbox = useAsync(async (signal) => {
    const [items, datasets] = await Promise.all([listApprovals(signal), listDatasets(signal)]);
    return { items, datasets };
  }, []);
  const [flash, setFlash] = useState('');
  return (
    <>
      <div className="page-head">
        <h1>Approvals</h1>
        <p className="lede">Requests waiting for a decision you may give.</p>
      </div>
      <p role="status" aria-live="polite" className={flash ? 'alert alert-success' : 'sr-only'}>
        {flash}
      </p>
      {inbox.loading && !inbox.data ? <Loading label="Loading the inbox…" /> : null}
      <ProblemAlert error={inbox.error} title="Could not load the approvals inbox" />
      {inbox.data ? (
        inbox.data.items.length === 0 ? (
          <Empty>Nothing waits for your decision.</Empty>
        ) : (
          <div className="stack">
            {inbox.data.items.map((p) => (
              <Request
                key={`${p.metadata.team}/${p.metadata.name}/${p.metadata.generation}`}
                p={p}
                datasets={inbox.data!.datasets}
                onDecided={(msg) => {
                  setFlash(msg);
                  inbox.reload();
                }}
              />
            ))}
          </div>
        )
      ) : null}
    </>
  );
}

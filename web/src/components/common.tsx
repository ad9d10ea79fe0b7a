// Small shared pieces: problem display, loading, badges, progress bars, page titles.
import { useEffect, useId } from 'react';
import type { ReactNode } from 'react';
import { toProblem } from '../api/problem';
import type { FieldError } from '../api/problem';
import { phaseLabel, percent } from '../lib/format';

/** Sets the document title for the page (screen readers announce it on navigation). */
export function usePageTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · Sluice` : 'Sluice';
  }, [title]);
}

function statusHint(status: number): string | null {
  switch (status) {
    case 0:
      return null;
    case 401:
      return 'Your sign-in was not accepted.';
    case 403:
      return 'Your role or team may not do this. Ask your platform team if you need access.';
    case 404:
      return null;
    case 503:
      return 'The service is unavailable right now; try again in a moment.';
    default:
      return null;
  }
}

/**
 * An error from the API (problem+json) or elsewhere: title, detail, and the field errors
 * that could not be shown next to their field.
 */
export function ProblemAlert({ error, title, fieldErrors, children }: { error: unknown; title?: string; fieldErrors?: FieldError[]; children?: ReactNode }) {
  if (!error) return null;
  const p = toProblem(error);
  const hint = statusHint(p.status);
  const errs = fieldErrors ?? p.errors ?? [];
  return (
    <div className="alert alert-error" role="alert">
      <p className="alert-title">
        {title ?? p.title}
        {p.status ? <span className="muted"> (HTTP {p.status}{p.code ? `, ${p.code}` : ''})</span> : null}
      </p>
      {p.detail ? <p>{p.detail}</p> : null}
      {hint ? <p>{hint}</p> : null}
      {errs.length > 0 ? (
        <ul className="field-error-list">
          {errs.map((e, i) => (
            <li key={i}>
              <code>{e.pointer.replace(/^#/, '')}</code>: {e.detail}
            </li>
          ))}
        </ul>
      ) : null}
      {children}
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {label}
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

const PHASE_TONE: Record<string, string> = {
  PendingApproval: 'warning',
  Approved: 'info',
  Provisioning: 'info',
  Backfilling: 'info',
  Live: 'success',
  Degraded: 'warning',
  Failed: 'danger',
  Rejected: 'danger',
  Deleting: 'neutral',
};

export function PhaseBadge({ phase, testId }: { phase: string | null | undefined; testId?: string }) {
  const tone = PHASE_TONE[phase ?? ''] ?? 'neutral';
  return (
    <span className={`badge badge-${tone}`} data-phase={phase ?? ''} data-testid={testId}>
      {phaseLabel(phase)}
    </span>
  );
}

export function Badge({ tone = 'neutral', children, title }: { tone?: string; children: ReactNode; title?: string }) {
  return (
    <span className={`badge badge-${tone}`} title={title}>
      {children}
    </span>
  );
}

const CLASS_TONE: Record<string, string> = { public: 'success', internal: 'info', confidential: 'warning', restricted: 'danger' };

export function ClassificationBadge({ value }: { value: string | undefined }) {
  if (!value) return null;
  return <Badge tone={CLASS_TONE[value] ?? 'neutral'}>{value}</Badge>;
}

export function PiiMark() {
  return (
    <span className="badge badge-pii" title="Personal data (x-pii): taking it needs the dataset owner's approval">
      PII
    </span>
  );
}

/** A labelled progress bar (role=progressbar with its value for assistive technology). */
export function ProgressBar({ label, done, total, detail }: { label: string; done: number; total: number; detail?: ReactNode }) {
  const id = useId();
  const pct = percent(done, total);
  return (
    <div className="progress">
      <div className="progress-head">
        <span id={id}>{label}</span>
        <span className="muted">{pct.toFixed(pct < 10 && pct > 0 ? 1 : 0)}%</span>
      </div>
      <div
        className="progress-track"
        role="progressbar"
        aria-labelledby={id}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(pct)}
        aria-valuetext={`${Math.round(pct)}%: ${done} of ${total} events`}
      >
        <div className="progress-fill" style={{ width: `${pct}%` }} />
      </div>
      {detail ? <div className="progress-detail muted">{detail}</div> : null}
    </div>
  );
}

/** A definition list of label → value pairs. */
export function Facts({ items }: { items: [string, ReactNode][] }) {
  return (
    <dl className="facts">
      {items
        .filter(([, v]) => v !== undefined && v !== null && v !== '')
        .map(([k, v]) => (
          <div key={k} className="fact">
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
    </dl>
  );
}

/** Copies text to the clipboard; a visible confirmation is announced politely. */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

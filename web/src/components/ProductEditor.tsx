// Request (or change) a data product: the guided form and the YAML editor over ONE product
// document, a live dry-run plan, and submit (PUT /products/{team}/{name}).
import { useEffect, useMemo, useReducer, useRef, useState } from 'react';
import { putProduct } from '../api/endpoints';
import { ApiError } from '../api/problem';
import type { FieldError } from '../api/problem';
import type { DataProduct, Dataset, ProductDoc, TargetCluster } from '../api/types';
import { draftReducer, initDraft } from '../lib/draft';
import { sourceFields } from '../lib/spec';
import { usePlan } from '../lib/usePlan';
import type { PlanState } from '../lib/usePlan';
import type { Schema } from '../lib/yamlCompletion';
import { locatePointer } from '../lib/yamlPointer';
import { copyText, Loading, ProblemAlert } from './common';
import { PlanView } from './PlanView';
import { ProductForm } from './ProductForm';
import { Tabs } from './Tabs';
import { focusEditorAt, YamlEditor } from './YamlEditor';
import type { EditorDiagnostic } from './YamlEditor';

export interface ProductEditorProps {
  initial: ProductDoc;
  datasets: Dataset[];
  clusters: TargetCluster[];
  schema: Schema | null;
  teamLocked?: boolean;
  nameLocked?: boolean;
  teams?: string[];
  /** The resourceVersion the edit is based on (sent as If-Match). */
  resourceVersion?: string;
  /** Existing product: the button says "Submit changes". */
  existing?: boolean;
  onSubmitted?: (p: DataProduct) => void;
  initialTab?: 'form' | 'yaml';
  debounceMs?: number;
}

function PlanStatus({ plan }: { plan: PlanState }) {
  let text: string;
  let tone = 'neutral';
  switch (plan.state) {
    case 'idle':
      text = plan.message;
      break;
    case 'checking':
      text = 'Checking the request…';
      tone = 'info';
      break;
    case 'valid':
      text = plan.plan.warnings.length ? `Valid, with ${plan.plan.warnings.length} warning${plan.plan.warnings.length === 1 ? '' : 's'}.` : 'Valid.';
      tone = plan.plan.warnings.length ? 'warning' : 'success';
      break;
    case 'invalid':
      text = `${plan.errors.length || 'Some'} problem${plan.errors.length === 1 ? '' : 's'} to fix.`;
      tone = 'danger';
      break;
    case 'error':
      text = `Could not check the request: ${plan.problem.detail ?? plan.problem.title}`;
      tone = 'danger';
      break;
  }
  return (
    <p className={`plan-status tone-${tone}`} role="status" aria-live="polite" data-testid="plan-status">
      {text}
    </p>
  );
}

export function ProductEditor(props: ProductEditorProps) {
  const { datasets, clusters, schema, teamLocked, nameLocked, teams, resourceVersion, existing, onSubmitted, debounceMs } = props;
  const [draft, dispatch] = useReducer(draftReducer, props.initial, initDraft);
  const [tab, setTab] = useState<string>(props.initialTab ?? 'form');
  const plan = usePlan(draft.doc, draft.revision, !!draft.yamlError, debounceMs);
  const [submitting, setSubmitting] = useState(false);
  const [submitError, setSubmitError] = useState<unknown>(null);
  const [submitRevision, setSubmitRevision] = useState(-1);
  const [copied, setCopied] = useState('');
  const yamlHost = useRef<HTMLDivElement>(null);

  // A submit error stands until the document changes.
  const submitStale = submitRevision !== draft.revision;
  const fieldErrors: FieldError[] = useMemo(() => {
    if (submitError instanceof ApiError && !submitStale && submitError.fieldErrors.length) return submitError.fieldErrors;
    return plan.state === 'invalid' ? plan.errors : [];
  }, [submitError, submitStale, plan]);

  const located = useMemo(
    () => fieldErrors.map((e) => ({ error: e, span: locatePointer(draft.yamlText, e.pointer) })),
    [fieldErrors, draft.yamlText],
  );
  const diagnostics: EditorDiagnostic[] = useMemo(() => {
    const d: EditorDiagnostic[] = [];
    if (draft.yamlError) d.push({ from: draft.yamlError.from, to: draft.yamlError.to, severity: 'error', message: draft.yamlError.message });
    else for (const { error, span } of located) if (span) d.push({ from: span.from, to: span.to, severity: 'error', message: `${error.pointer.replace(/^#/, '')}: ${error.detail}` });
    return d;
  }, [draft.yamlError, located]);

  const hintsRef = useRef({ schema, datasets, clusters, doc: draft.doc });
  hintsRef.current = { schema, datasets, clusters, doc: draft.doc };
  const completion = () => {
    const h = hintsRef.current;
    const srcs = sourceFields(h.doc.spec, h.datasets);
    return {
      schema: h.schema,
      hints: {
        datasets: h.datasets.map((d) => d.metadata.name),
        clusters: h.clusters.map((c) => c.metadata.name),
        aliases: (h.doc.spec?.sources ?? []).map((s) => s.name ?? '').filter(Boolean),
        fieldPaths: srcs.flatMap((s) => s.fields.map((f) => ({ path: `${s.alias}.${f.name}`, type: f.type, pii: f.pii }))),
      },
    };
  };

  useEffect(() => {
    if (copied) {
      const t = setTimeout(() => setCopied(''), 2500);
      return () => clearTimeout(t);
    }
  }, [copied]);

  const team = draft.doc.metadata?.team ?? '';
  const name = draft.doc.metadata?.name ?? '';
  const canSubmit = !draft.yamlError && !!team && !!name && !submitting;

  const submit = async () => {
    setSubmitting(true);
    setSubmitError(null);
    try {
      const saved = await putProduct(team, name, draft.doc, resourceVersion);
      onSubmitted?.(saved);
    } catch (e) {
      setSubmitError(e);
      setSubmitRevision(draft.revision);
    } finally {
      setSubmitting(false);
    }
  };

  const yamlPane = (
    <div className="yaml-pane">
      <p className="hint" id="yaml-help">
        The same request as YAML. Press Ctrl+Space for completion from the DataProduct schema and the catalog; Tab moves focus out of
        the editor. Changes here update the form as soon as the YAML is valid.
      </p>
      {draft.yamlError ? (
        <p className="field-error yaml-error" role="alert" id="yaml-error">
          YAML error on line {draft.yamlError.line}, column {draft.yamlError.col}: {draft.yamlError.message}. The form keeps the last
          valid version until this is fixed.
        </p>
      ) : null}
      <div ref={yamlHost}>
        <YamlEditor
          label="Product YAML"
          value={draft.yamlText}
          onChange={(text) => dispatch({ type: 'yaml', text })}
          diagnostics={diagnostics}
          completion={completion}
          describedBy={draft.yamlError ? 'yaml-error yaml-help' : 'yaml-help'}
        />
      </div>
      {!draft.yamlError && located.length > 0 ? (
        <div className="problems">
          <h3>Problems</h3>
          <ul>
            {located.map(({ error, span }, i) => (
              <li key={i}>
                {span ? (
                  <button type="button" className="link-button" onClick={() => focusEditorAt(yamlHost.current, span.from)}>
                    Line {span.line}
                  </button>
                ) : null}{' '}
                <code>{error.pointer.replace(/^#/, '')}</code>: {error.detail}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <button
        type="button"
        className="btn btn-small btn-secondary"
        onClick={async () => setCopied((await copyText(draft.yamlText)) ? 'YAML copied.' : 'Could not copy: select the text and copy it.')}
      >
        Copy YAML
      </button>
      <span role="status" className="small muted">
        {copied}
      </span>
    </div>
  );

  const formPane = (
    <>
      {draft.yamlError ? (
        <p className="alert alert-warning" role="note">
          The YAML has an error on line {draft.yamlError.line}; the form shows the last valid version and is read-only until the YAML is
          fixed.
        </p>
      ) : null}
      <fieldset disabled={!!draft.yamlError} className="bare">
        <legend className="sr-only">Request form</legend>
        <ProductForm
          doc={draft.doc}
          onChange={(update) => dispatch({ type: 'form', update })}
          datasets={datasets}
          clusters={clusters}
          errors={fieldErrors}
          teamLocked={teamLocked}
          nameLocked={nameLocked}
          teams={teams}
        />
      </fieldset>
    </>
  );

  const planForView = plan.state === 'valid' ? plan.plan : plan.state === 'checking' ? plan.plan : undefined;

  return (
    <div className="editor-layout">
      <div className="editor-main">
        <Tabs
          label="Request editor"
          active={tab}
          onChange={setTab}
          tabs={[
            { id: 'form', label: 'Form', content: formPane },
            { id: 'yaml', label: 'YAML', content: yamlPane },
          ]}
        />
        <div className="submit-bar">
          {submitError ? (
            <ProblemAlert
              error={submitError}
              title={submitError instanceof ApiError && submitError.status === 409 ? 'The product changed since you loaded it' : 'The request was not accepted'}
              fieldErrors={[]}
            >
              {submitError instanceof ApiError && submitError.fieldErrors.length ? <p>The problems are marked at their fields.</p> : null}
            </ProblemAlert>
          ) : null}
          <button type="button" className="btn btn-primary" disabled={!canSubmit} onClick={submit}>
            {submitting ? 'Submitting…' : existing ? 'Submit changes' : 'Submit request'}
          </button>
          {!team || !name ? <span className="hint"> A team and a name are needed to submit.</span> : null}
        </div>
      </div>
      <aside className="editor-plan" aria-labelledby="plan-heading">
        <h2 id="plan-heading">Plan</h2>
        <PlanStatus plan={plan} />
        {plan.state === 'error' ? <ProblemAlert error={new ApiError(plan.problem)} title="The plan could not be made" /> : null}
        {plan.state === 'invalid' ? <p className="hint">The problems are marked at their fields in the form and on their lines in the YAML.</p> : null}
        {plan.state === 'checking' && !planForView ? <Loading label="Planning…" /> : null}
        {planForView ? (
          <div className={plan.state === 'checking' ? 'stale' : undefined} aria-busy={plan.state === 'checking'}>
            <PlanView plan={planForView} />
          </div>
        ) : null}
      </aside>
    </div>
  );
}

// The plan of a product: what Sluice will create and read, before anyone approves it.
import type { JsonSchema, Plan, PlanTarget } from '../api/types';
import { formatBytes, formatCount, formatDuration, formatTime } from '../lib/format';
import { typeLabel } from '../lib/spec';
import { Badge } from './common';
import { useId } from 'react';
import type { ReactNode } from 'react';

function Sec({ title, children }: { title: string; children: ReactNode }) {
  const id = useId();
  return (
    <section aria-labelledby={id}>
      <h3 id={id}>{title}</h3>
      {children}
    </section>
  );
}

function OutputSchema({ plan }: { plan: Plan }) {
  const props = (plan.outputSchema?.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set(plan.outputSchema?.required ?? []);
  const keyField = plan.target?.identity?.field;
  return (
    <div className="table-wrap" tabIndex={0}>
      <table className="data-table compact">
        <caption>Output schema</caption>
        <thead>
          <tr>
            <th scope="col">Field</th>
            <th scope="col">Type</th>
            <th scope="col">Nullable</th>
          </tr>
        </thead>
        <tbody>
          {Object.entries(props).map(([name, s]) => {
            const types = Array.isArray(s.type) ? s.type : [s.type];
            return (
              <tr key={name}>
                <th scope="row">
                  <code>{name}</code> {name === keyField ? <Badge tone="info">key</Badge> : null}
                </th>
                <td>
                  <code>{typeLabel(s)}</code>
                </td>
                <td>{types.includes('null') || !required.has(name) ? 'yes' : 'no'}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {plan.outputSchema?.['x-sluice-key'] ? (
        <p className="small muted">
          Output key: <code>{plan.outputSchema['x-sluice-key'].expr}</code> ({plan.outputSchema['x-sluice-key'].type})
        </p>
      ) : null}
    </div>
  );
}

function TargetDetails({ target }: { target: PlanTarget }) {
  if (target.type === 'postgres') {
    return (
      <>
        <p>
          PostgreSQL table <code>{[target.schema, target.table].filter(Boolean).join('.')}</code>
          {target.view ? (
            <>
              , read through view <code>{target.view}</code>
            </>
          ) : null}
          {target.role ? (
            <>
              ; reader role <code>{target.role}</code>
            </>
          ) : null}
          .
        </p>
        <h4>DDL</h4>
        <pre className="code-block" tabIndex={0} aria-label="DDL statements">
          {(target.statements ?? []).map((s) => `${s};`).join('\n\n')}
        </pre>
      </>
    );
  }
  if (target.type === 'elasticsearch') {
    return (
      <>
        <p>
          Index <code>{target.index}</code>
          {target.alias ? (
            <>
              {' '}
              behind alias <code>{target.alias}</code>
            </>
          ) : null}
          ; {target.shards ?? '?'} shard(s), {target.replicas ?? '?'} replica(s).
        </p>
        <h4>Index mapping</h4>
        <pre className="code-block" tabIndex={0} aria-label="Index mapping">
          {JSON.stringify(target.createIndex, null, 2)}
        </pre>
      </>
    );
  }
  if (target.type === 'redis') {
    return (
      <>
        <h4>Redis key layout</h4>
        <dl className="facts">
          <div className="fact">
            <dt>Keys</dt>
            <dd>
              <code>{target.keyPattern}</code>
            </dd>
          </div>
          <div className="fact">
            <dt>Encoding</dt>
            <dd>{target.encoding === 'hash' ? 'one hash per key' : target.encoding === 'json' ? 'one JSON string per key' : target.encoding}</dd>
          </div>
          {target.fields ? (
            <div className="fact">
              <dt>Fields</dt>
              <dd>{target.fields.join(', ')}</dd>
            </div>
          ) : null}
          <div className="fact">
            <dt>Current version pointer</dt>
            <dd>
              <code>{target.pointerKey}</code> → <code>{target.pointerValue}</code>
            </dd>
          </div>
          <div className="fact">
            <dt>TTL</dt>
            <dd>{target.ttlSeconds ? formatDuration(target.ttlSeconds) : 'none'}</dd>
          </div>
          {target.user ? (
            <div className="fact">
              <dt>Reader user</dt>
              <dd>
                <code>{target.user}</code>
              </dd>
            </div>
          ) : null}
        </dl>
        {target.aclRule ? (
          <pre className="code-block" tabIndex={0} aria-label="Redis ACL rule">
            {`ACL SETUSER ${target.aclRule.replace(/^user /, '')}`}
          </pre>
        ) : null}
      </>
    );
  }
  return (
    <pre className="code-block" tabIndex={0} aria-label="Target">
      {JSON.stringify(target, null, 2)}
    </pre>
  );
}

const CLASS_TONE = { online: 'success', rebuild: 'warning', destructive: 'danger' } as const;

export function PlanChanges({ plan }: { plan: Plan }) {
  if (!plan.diff) return null;
  return (
    <Sec title="Changes against the running version">
      {plan.diff.length === 0 ? (
        <p>No changes.</p>
      ) : (
        <>
          <p>{plan.requiresNewVersion ? `Needs a new version (v${plan.version}), built beside the running one and then swapped in.` : 'Applied in place to the running version.'}</p>
          <ul className="change-list">
            {plan.diff.map((c, i) => (
              <li key={i}>
                <Badge tone={CLASS_TONE[c.class] ?? 'neutral'}>{c.class}</Badge> <code>{c.path}</code> {c.description}
              </li>
            ))}
          </ul>
        </>
      )}
    </Sec>
  );
}

export function BackfillEstimate({ plan }: { plan: Plan }) {
  const b = plan.backfill;
  return (
    <Sec title="Backfill">
      {!b ? (
        <p className="muted">No estimate: Kafka did not answer or a source topic does not exist (see the warnings).</p>
      ) : (
        <>
          <p className="backfill-total">
            <strong>{formatCount(b.events)}</strong> events, <strong>{formatBytes(b.bytes)}</strong>, about{' '}
            <strong>{formatDuration(b.estimatedSeconds)}</strong>
          </p>
          <div className="table-wrap" tabIndex={0}>
            <table className="data-table compact">
              <caption>Events to read per source topic</caption>
              <thead>
                <tr>
                  <th scope="col">Topic</th>
                  <th scope="col">Partitions</th>
                  <th scope="col">From</th>
                  <th scope="col">Events</th>
                  <th scope="col">Size</th>
                </tr>
              </thead>
              <tbody>
                {b.sources.map((s) => (
                  <tr key={s.topic}>
                    <th scope="row">
                      <code>{s.topic}</code>
                      {s.retentionWarning ? (
                        <div className="small warning-text" role="note">
                          ⚠ {s.retentionWarning}
                        </div>
                      ) : null}
                    </th>
                    <td>{s.partitions}</td>
                    <td>{s.fromMs ? formatTime(s.fromMs) : 'earliest'}</td>
                    <td>{formatCount(s.events)}</td>
                    <td>{formatBytes(s.bytes)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </Sec>
  );
}

export function PreviewRows({ rows }: { rows: Record<string, unknown>[] }) {
  if (!rows.length) return null;
  const cols = Array.from(new Set(rows.flatMap((r) => Object.keys(r))));
  return (
    <div className="table-wrap" tabIndex={0}>
      <table className="data-table compact">
        <caption>Preview of output rows (newest first; personal data shown as •••)</caption>
        <thead>
          <tr>
            {cols.map((c) => (
              <th scope="col" key={c}>
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              {cols.map((c) => (
                <td key={c}>{cell(r[c])}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function cell(v: unknown) {
  if (v === null || v === undefined) return <span className="muted">null</span>;
  if (v === '•••') return <span className="masked" title="Masked: personal data">•••</span>;
  if (typeof v === 'object') return <code className="small">{JSON.stringify(v)}</code>;
  return String(v);
}

export function PlanView({ plan }: { plan: Plan }) {
  return (
    <div className="plan">
      <p>
        Version <strong>v{plan.version}</strong>
        {plan.requiresNewVersion ? ' (a new version is built)' : ''}
      </p>
      <PlanChanges plan={plan} />
      {plan.warnings.length > 0 ? (
        <Sec title="Warnings">
          <ul className="warning-list">
            {plan.warnings.map((w, i) => (
              <li key={i}>{w}</li>
            ))}
          </ul>
        </Sec>
      ) : null}
      <Sec title="Output">
        <OutputSchema plan={plan} />
      </Sec>
      <Sec title="Target">
        <TargetDetails target={plan.target} />
      </Sec>
      <BackfillEstimate plan={plan} />
      <Sec title="Topics">
        <ul>
          {plan.topics.map((t) => (
            <li key={t.name}>
              <code>{t.name}</code> ({t.purpose === 'deadLetter' ? 'dead letters' : t.purpose}, {t.partitions} partition{t.partitions === 1 ? '' : 's'}
              {t.configs?.['cleanup.policy'] ? `, ${t.configs['cleanup.policy']}` : ''})
            </li>
          ))}
        </ul>
      </Sec>
      {plan.preview.length > 0 ? (
        <Sec title="Preview">
          <PreviewRows rows={plan.preview} />
        </Sec>
      ) : null}
    </div>
  );
}

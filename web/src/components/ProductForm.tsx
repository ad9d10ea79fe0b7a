// The guided form of a DataProduct. It edits the product document (the editor's one source
// of truth) through `onChange(update)`; every control shows the API's field errors whose
// JSON pointer names it, and the errors no control claims are listed at the top with links.
import { useEffect, useId, useMemo, useState } from 'react';
import type { ReactNode } from 'react';
import type { FieldError } from '../api/problem';
import { errorsAt, pointerOf, pointerSegments } from '../api/problem';
import type { Dataset, FieldDraft, JoinDraft, ProductDoc, ProductSpecDraft, SourceDraft, TargetCluster } from '../api/types';
import { FIELD_TYPES } from '../api/types';
import { checkCel } from '../lib/cel';
import {
  datasetFields,
  DNS_LABEL,
  fieldDescription,
  fieldExpr,
  fieldType,
  makeField,
  parseEquality,
  plainPath,
  renameKey,
  sourceFields,
  suggestAlias,
  suggestJoinOn,
} from '../lib/spec';
import { ClassificationBadge, PiiMark } from './common';

export interface ProductFormProps {
  doc: ProductDoc;
  onChange: (update: (doc: ProductDoc) => ProductDoc) => void;
  datasets: Dataset[];
  clusters: TargetCluster[];
  errors: FieldError[];
  /** The team cannot be changed (non-admins, or an existing product). */
  teamLocked?: boolean;
  /** The name cannot be changed (an existing product). */
  nameLocked?: boolean;
  teams?: string[];
}

/** An id for the control of a pointer, so error summaries can link to it. */
export function controlId(pointer: string): string {
  return 'f-' + pointerSegments(pointer).join('-').replace(/[^A-Za-z0-9_-]/g, '_');
}

/** Tracks which field errors the form shows next to a control. */
class ErrorRegistry {
  readonly claimed = new Set<FieldError>();
  constructor(private readonly errors: FieldError[]) {}
  at(pointer: string): FieldError[] {
    const found = errorsAt(this.errors, pointer);
    found.forEach((e) => this.claimed.add(e));
    return found;
  }
  unclaimed(): FieldError[] {
    return this.errors.filter((e) => !this.claimed.has(e));
  }
}

function SrOnly({ children }: { children: ReactNode }) {
  return <span className="sr-only">{children}</span>;
}

interface FieldProps {
  id: string;
  label: ReactNode;
  errors: FieldError[];
  hint?: ReactNode;
  warning?: string | null;
  children: (aria: { id: string; 'aria-invalid'?: true; 'aria-describedby'?: string }) => ReactNode;
  className?: string;
}

/** A label, a control, its hint and its errors, wired with for/id and aria-describedby. */
function Field({ id, label, errors, hint, warning, children, className }: FieldProps) {
  const hintId = `${id}-hint`;
  const errId = `${id}-error`;
  const warnId = `${id}-warning`;
  const describedBy = [errors.length ? errId : '', warning ? warnId : '', hint ? hintId : ''].filter(Boolean).join(' ');
  return (
    <div className={`field ${errors.length ? 'field-invalid' : ''} ${className ?? ''}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, ...(errors.length ? { 'aria-invalid': true as const } : {}), ...(describedBy ? { 'aria-describedby': describedBy } : {}) })}
      {errors.length ? (
        <p className="field-error" id={errId}>
          {errors.map((e) => e.detail).join('; ')}
        </p>
      ) : null}
      {warning ? (
        <p className="field-warning" id={warnId}>
          {warning}
        </p>
      ) : null}
      {hint ? (
        <p className="hint" id={hintId}>
          {hint}
        </p>
      ) : null}
    </div>
  );
}

function GroupErrors({ errors }: { errors: FieldError[] }) {
  if (!errors.length) return null;
  return (
    <p className="field-error" role="note">
      {errors.map((e) => e.detail).join('; ')}
    </p>
  );
}

const spec = (d: ProductDoc): ProductSpecDraft => (d.spec ??= {});

/** A field name free in `fields` for `wanted`, else alias_wanted, else numbered. */
function freeName(fields: Record<string, FieldDraft>, wanted: string, alias: string): string {
  if (!(wanted in fields)) return wanted;
  const prefixed = `${alias}_${wanted}`;
  if (!(prefixed in fields)) return prefixed;
  for (let i = 2; ; i++) if (!(`${wanted}_${i}` in fields)) return `${wanted}_${i}`;
}

interface FieldRowProps {
  index: number;
  name: string;
  value: FieldDraft;
  allNames: string[];
  reg: ErrorRegistry;
  onRename: (to: string) => void;
  onSet: (f: FieldDraft) => void;
  onRemove: () => void;
  fieldPaths: { path: string; type: string; pii: boolean }[];
  listId: string;
}

function FieldRow({ index, name, value, allNames, reg, onRename, onSet, onRemove, fieldPaths, listId }: FieldRowProps) {
  const [draftName, setDraftName] = useState(name);
  useEffect(() => setDraftName(name), [name]);
  const n = index + 1;
  const pointer = pointerOf('spec', 'fields', name);
  const expr = fieldExpr(value);
  const type = fieldType(value);
  const description = fieldDescription(value);
  const nameProblem =
    draftName === name
      ? null
      : !draftName.trim()
        ? 'a field needs a name'
        : allNames.includes(draftName)
          ? `another field is already called \`${draftName}\``
          : null;
  const path = plainPath(expr);
  const source = path ? fieldPaths.find((f) => f.path === expr) : undefined;
  const fieldErrs = [...reg.at(pointer), ...reg.at(`${pointer}/expr`)];
  const typeErrs = reg.at(`${pointer}/type`);
  return (
    <tr>
      <td>
        <Field
          id={controlId(`${pointer}/name`) + `-${index}`}
          label={<SrOnly>Field {n} name</SrOnly>}
          errors={nameProblem ? [{ pointer, detail: nameProblem }] : []}
        >
          {(aria) => (
            <input
              {...aria}
              type="text"
              value={draftName}
              autoComplete="off"
              spellCheck={false}
              onChange={(e) => {
                const to = e.target.value;
                setDraftName(to);
                if (to.trim() && to !== name && !allNames.includes(to)) onRename(to);
              }}
              onBlur={() => setDraftName(name)}
            />
          )}
        </Field>
      </td>
      <td>
        <Field id={controlId(pointer)} label={<SrOnly>Field {n} expression</SrOnly>} errors={fieldErrs}>
          {(aria) => (
            <input
              {...aria}
              type="text"
              className="mono"
              value={expr}
              list={listId}
              autoComplete="off"
              spellCheck={false}
              onChange={(e) => onSet(makeField(e.target.value, type, description))}
            />
          )}
        </Field>
        {source?.pii ? (
          <span className="small">
            <PiiMark /> needs the dataset owner's approval
          </span>
        ) : null}
      </td>
      <td>
        <Field id={controlId(`${pointer}/type`)} label={<SrOnly>Field {n} type</SrOnly>} errors={typeErrs}>
          {(aria) => (
            <select {...aria} value={type} onChange={(e) => onSet(makeField(expr, e.target.value, description))}>
              <option value="">{path ? `from source${source ? ` (${source.type})` : ''}` : 'choose a type'}</option>
              {FIELD_TYPES.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          )}
        </Field>
      </td>
      <td className="row-actions">
        <button type="button" className="btn btn-small btn-ghost" onClick={onRemove} aria-label={`Remove field ${n} (${name})`}>
          Remove
        </button>
      </td>
    </tr>
  );
}

export function ProductForm({ doc, onChange, datasets, clusters, errors, teamLocked, nameLocked, teams }: ProductFormProps) {
  const reg = new ErrorRegistry(errors);
  const uid = useId();
  const s = doc.spec ?? {};
  const sources = s.sources ?? [];
  const joins = s.joins ?? [];
  const fields = s.fields ?? {};
  const target = s.target ?? {};
  const datasetByName = useMemo(() => new Map(datasets.map((d) => [d.metadata.name, d])), [datasets]);
  const srcFields = sourceFields(s, datasets);
  const aliases = sources.map((x) => x.name ?? '').filter(Boolean);
  const fieldPaths = srcFields.flatMap((sf) => sf.fields.map((f) => ({ path: `${sf.alias}.${f.name}`, type: f.type, pii: f.pii })));
  const team = doc.metadata?.team ?? '';
  const cluster = clusters.find((c) => c.metadata.name === target.cluster);
  const targetType = cluster?.spec.type ?? target.dedicated?.type;
  const pathListId = `${uid}-paths`;

  const edit = (fn: (d: ProductDoc) => void) =>
    onChange((d) => {
      fn(d);
      return d;
    });

  // ---- metadata ----
  const nameValue = doc.metadata?.name ?? '';
  const nameLocal = nameValue && !DNS_LABEL.test(nameValue) ? 'lowercase letters, digits and dashes; start and end with a letter or digit' : null;
  const basics = (
    <fieldset className="form-section">
      <legend>Product</legend>
      <div className="grid-2">
        <Field
          id="f-metadata-team"
          label="Team"
          errors={reg.at('#/metadata/team')}
          hint={teamLocked ? 'Products are requested for your own team.' : undefined}
        >
          {(aria) => (
            <>
              <input
                {...aria}
                type="text"
                value={team}
                readOnly={teamLocked}
                list={teams?.length ? `${uid}-teams` : undefined}
                autoComplete="off"
                spellCheck={false}
                onChange={(e) => edit((d) => ((d.metadata ??= {}).team = e.target.value))}
              />
              {teams?.length ? (
                <datalist id={`${uid}-teams`}>
                  {teams.map((t) => (
                    <option key={t} value={t} />
                  ))}
                </datalist>
              ) : null}
            </>
          )}
        </Field>
        <Field
          id="f-metadata-name"
          label="Name"
          errors={reg.at('#/metadata/name')}
          warning={nameLocal}
          hint={nameLocked ? 'The name of an existing product cannot change.' : 'A DNS label, unique in the team, e.g. orders-enriched.'}
        >
          {(aria) => (
            <input
              {...aria}
              type="text"
              value={nameValue}
              readOnly={nameLocked}
              autoComplete="off"
              spellCheck={false}
              onChange={(e) => edit((d) => ((d.metadata ??= {}).name = e.target.value))}
            />
          )}
        </Field>
      </div>
      <Field id="f-metadata-description" label="Description" errors={reg.at('#/metadata/description')}>
        {(aria) => (
          <textarea
            {...aria}
            rows={2}
            value={doc.metadata?.description ?? ''}
            onChange={(e) => edit((d) => ((d.metadata ??= {}).description = e.target.value || undefined))}
          />
        )}
      </Field>
    </fieldset>
  );

  // ---- sources ----
  const setSource = (i: number, patch: Partial<SourceDraft>) =>
    edit((d) => {
      const sp = spec(d);
      const list = (sp.sources ??= []);
      const before = list[i] ?? {};
      const next = { ...before, ...patch };
      list[i] = next;
      // A new dataset on an aliasless source: suggest an alias; on a later source, a join.
      if (patch.dataset && !before.name) {
        next.name = suggestAlias(patch.dataset, list.filter((_, j) => j !== i).map((x) => x.name ?? ''));
      }
      if (patch.dataset && i > 0 && next.name && !(sp.joins ?? []).some((j) => j.right === next.name)) {
        const ds = datasetByName.get(patch.dataset);
        const driving = list[0];
        const on = suggestJoinOn(driving?.name ?? '', datasetByName.get(driving?.dataset ?? ''), next.name, ds);
        const join: JoinDraft = ds?.spec.kind === 'table' ? { type: 'lookup', right: next.name, on } : { type: 'window', right: next.name, on, within: '1h' };
        (sp.joins ??= []).push(join);
      }
      // The driving source's record key is the natural output key.
      if (patch.dataset && i === 0 && !sp.key) {
        const k = datasetByName.get(patch.dataset)?.spec.key;
        if (k && next.name) sp.key = `${next.name}.${k}`;
      }
      // An alias renamed: expressions follow.
      if (patch.name !== undefined && before.name && patch.name && before.name !== patch.name) {
        const re = new RegExp(`\\b${before.name}\\.`, 'g');
        const rewrite = (x: string | undefined) => (x ? x.replace(re, `${patch.name}.`) : x);
        sp.filter = rewrite(sp.filter);
        sp.key = rewrite(sp.key);
        for (const j of sp.joins ?? []) {
          j.on = rewrite(j.on);
          if (j.right === before.name) j.right = patch.name;
        }
        for (const [k, f] of Object.entries(sp.fields ?? {})) {
          sp.fields![k] = typeof f === 'string' ? rewrite(f)! : { ...f, expr: rewrite(f.expr) };
        }
      }
    });

  const sourcesSection = (
    <fieldset className="form-section">
      <legend>Sources</legend>
      <p className="hint">The first source is the driving stream; the others are joined to it.</p>
      <GroupErrors errors={reg.at('#/spec/sources')} />
      {sources.length === 0 ? <p className="muted">No source yet: add one from the catalog.</p> : null}
      {sources.map((src, i) => {
        const p = pointerOf('spec', 'sources', i);
        const ds = datasetByName.get(src.dataset ?? '');
        return (
          <fieldset key={i} className="subgroup">
            <legend>
              Source {i + 1}
              {i === 0 ? ' (driving stream)' : ''}
            </legend>
            <GroupErrors errors={reg.at(p)} />
            <div className="grid-source">
              <Field id={controlId(`${p}/dataset`)} label={<><SrOnly>Source {i + 1} </SrOnly>Dataset</>} errors={reg.at(`${p}/dataset`)}>
                {(aria) => (
                  <select {...aria} value={src.dataset ?? ''} onChange={(e) => setSource(i, { dataset: e.target.value })}>
                    <option value="">Choose a dataset…</option>
                    {src.dataset && !ds ? <option value={src.dataset}>{src.dataset} (not in the catalog)</option> : null}
                    {datasets.map((d) => (
                      <option key={d.metadata.name} value={d.metadata.name}>
                        {d.metadata.name} — {d.spec.kind}, {d.spec.classification ?? 'internal'}
                        {d.metadata.owner ? `, ${d.metadata.owner}` : ''}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              <Field
                id={controlId(`${p}/name`)}
                label={<><SrOnly>Source {i + 1} </SrOnly>Alias</>}
                errors={reg.at(`${p}/name`)}
                hint="Used in expressions, e.g. o.amount"
              >
                {(aria) => (
                  <input
                    {...aria}
                    type="text"
                    className="mono"
                    value={src.name ?? ''}
                    autoComplete="off"
                    spellCheck={false}
                    onChange={(e) => setSource(i, { name: e.target.value })}
                  />
                )}
              </Field>
              <Field
                id={controlId(`${p}/from`)}
                label={<><SrOnly>Source {i + 1} </SrOnly>Read from</>}
                errors={reg.at(`${p}/from`)}
                hint={ds?.spec.kind === 'table' ? 'Tables are loaded whole.' : 'earliest, latest, a duration back (90d) or a time'}
              >
                {(aria) => (
                  <input
                    {...aria}
                    type="text"
                    value={src.from ?? ''}
                    placeholder="earliest"
                    list={`${uid}-from`}
                    autoComplete="off"
                    onChange={(e) => setSource(i, { from: e.target.value || undefined })}
                  />
                )}
              </Field>
            </div>
            {ds ? (
              <p className="small muted">
                {ds.metadata.description} <ClassificationBadge value={ds.spec.classification ?? undefined} />{' '}
                {datasetFields(ds).some((f) => f.pii) ? <PiiMark /> : null}
              </p>
            ) : null}
            <button
              type="button"
              className="btn btn-small btn-ghost"
              aria-label={`Remove source ${i + 1}`}
              onClick={() =>
                edit((d) => {
                  const sp = spec(d);
                  const removed = sp.sources?.[i]?.name;
                  sp.sources?.splice(i, 1);
                  if (removed) sp.joins = (sp.joins ?? []).filter((j) => j.right !== removed);
                })
              }
            >
              Remove source
            </button>
          </fieldset>
        );
      })}
      <datalist id={`${uid}-from`}>
        {['earliest', 'latest', '1d', '7d', '30d', '90d'].map((v) => (
          <option key={v} value={v} />
        ))}
      </datalist>
      <button type="button" className="btn btn-secondary" onClick={() => edit((d) => (spec(d).sources ??= []).push({ name: '', dataset: '' }))}>
        Add source
      </button>
    </fieldset>
  );

  // ---- joins ----
  const setJoin = (i: number, patch: Partial<JoinDraft>) =>
    edit((d) => {
      const list = (spec(d).joins ??= []);
      const next: JoinDraft = { ...list[i], ...patch };
      if (next.type === 'lookup') delete next.within;
      if (next.type === 'window') delete next.propagate;
      if (next.inner === false) delete next.inner;
      if (next.propagate === false) delete next.propagate;
      list[i] = next;
    });
  const drivingAlias = sources[0]?.name ?? '';
  const drivingFields = srcFields.find((x) => x.alias === drivingAlias)?.fields ?? [];
  const joinsSection =
    sources.length > 1 || joins.length > 0 ? (
      <fieldset className="form-section">
        <legend>Joins</legend>
        <p className="hint">
          <strong>lookup</strong>: enrich each record with the current row of a table dataset. <strong>window</strong>: pair
          records of two streams whose event times are within a window.
        </p>
        <GroupErrors errors={reg.at('#/spec/joins')} />
        {joins.map((j, i) => {
          const p = pointerOf('spec', 'joins', i);
          const eq = parseEquality(j.on);
          const rightFields = srcFields.find((x) => x.alias === j.right)?.fields ?? [];
          const leftKey = eq && eq.left.startsWith(`${drivingAlias}.`) ? eq.left : eq?.right.startsWith(`${drivingAlias}.`) ? eq.right : '';
          const rightKey = eq ? (eq.left === leftKey ? eq.right : eq.left) : '';
          const compose = (l: string, r: string) => (l && r ? `${l} == ${r}` : j.on ?? '');
          const n = i + 1;
          return (
            <fieldset key={i} className="subgroup">
              <legend>Join {n}</legend>
              <GroupErrors errors={reg.at(p)} />
              <div className="grid-3">
                <Field id={controlId(`${p}/type`)} label={<><SrOnly>Join {n} </SrOnly>Type</>} errors={reg.at(`${p}/type`)}>
                  {(aria) => (
                    <select {...aria} value={j.type ?? ''} onChange={(e) => setJoin(i, { type: e.target.value, ...(e.target.value === 'window' && !j.within ? { within: '1h' } : {}) })}>
                      <option value="lookup">lookup (stream–table)</option>
                      <option value="window">window (stream–stream)</option>
                    </select>
                  )}
                </Field>
                <Field id={controlId(`${p}/right`)} label={<><SrOnly>Join {n} </SrOnly>Joined source</>} errors={reg.at(`${p}/right`)}>
                  {(aria) => (
                    <select {...aria} value={j.right ?? ''} onChange={(e) => setJoin(i, { right: e.target.value })}>
                      <option value="">Choose…</option>
                      {aliases.slice(1).map((a) => (
                        <option key={a} value={a}>
                          {a} ({sources.find((x) => x.name === a)?.dataset})
                        </option>
                      ))}
                    </select>
                  )}
                </Field>
                {j.type === 'window' ? (
                  <Field id={controlId(`${p}/within`)} label={<><SrOnly>Join {n} </SrOnly>Window</>} errors={reg.at(`${p}/within`)} hint="e.g. 1h, 15m">
                    {(aria) => (
                      <input {...aria} type="text" value={j.within ?? ''} onChange={(e) => setJoin(i, { within: e.target.value || undefined })} />
                    )}
                  </Field>
                ) : (
                  <div className="field checkbox-stack">
                    <label className="checkbox">
                      <input type="checkbox" checked={!!j.inner} onChange={(e) => setJoin(i, { inner: e.target.checked })} />
                      <SrOnly>Join {n}: </SrOnly>Drop records without a match
                    </label>
                    <label className="checkbox">
                      <input type="checkbox" checked={!!j.propagate} onChange={(e) => setJoin(i, { propagate: e.target.checked })} />
                      <SrOnly>Join {n}: </SrOnly>Update written rows when the table row changes
                    </label>
                  </div>
                )}
              </div>
              <div className="grid-2">
                <Field id={`${controlId(p)}-left`} label={<><SrOnly>Join {n} </SrOnly>Key of {drivingAlias || 'the driving source'}</>} errors={[]}>
                  {(aria) => (
                    <select {...aria} value={leftKey} onChange={(e) => setJoin(i, { on: compose(e.target.value, rightKey) })}>
                      <option value="">Choose a field…</option>
                      {drivingFields.map((f) => (
                        <option key={f.name} value={`${drivingAlias}.${f.name}`}>
                          {drivingAlias}.{f.name} ({f.type})
                        </option>
                      ))}
                    </select>
                  )}
                </Field>
                <Field id={`${controlId(p)}-rightkey`} label={<><SrOnly>Join {n} </SrOnly>Key of {j.right || 'the joined source'}</>} errors={[]}>
                  {(aria) => (
                    <select {...aria} value={rightKey} onChange={(e) => setJoin(i, { on: compose(leftKey, e.target.value) })}>
                      <option value="">Choose a field…</option>
                      {rightFields.map((f) => (
                        <option key={f.name} value={`${j.right}.${f.name}`}>
                          {j.right}.{f.name} ({f.type})
                        </option>
                      ))}
                    </select>
                  )}
                </Field>
              </div>
              <Field id={controlId(`${p}/on`)} label={<><SrOnly>Join {n} </SrOnly>Condition (CEL)</>} errors={reg.at(`${p}/on`)} warning={j.on ? checkCel(j.on, aliases) : null}>
                {(aria) => (
                  <input {...aria} type="text" className="mono" value={j.on ?? ''} list={pathListId} spellCheck={false} onChange={(e) => setJoin(i, { on: e.target.value })} />
                )}
              </Field>
              <button
                type="button"
                className="btn btn-small btn-ghost"
                aria-label={`Remove join ${n}`}
                onClick={() => edit((d) => spec(d).joins?.splice(i, 1))}
              >
                Remove join
              </button>
            </fieldset>
          );
        })}
        <button
          type="button"
          className="btn btn-secondary"
          onClick={() =>
            edit((d) => {
              const used = new Set((spec(d).joins ?? []).map((j) => j.right));
              const right = aliases.slice(1).find((a) => !used.has(a)) ?? '';
              (spec(d).joins ??= []).push({ type: 'lookup', right, on: '' });
            })
          }
        >
          Add join
        </button>
      </fieldset>
    ) : null;

  // ---- filter and key ----
  const filterWarning = s.filter ? checkCel(s.filter, aliases) : null;
  const filterSection = (
    <fieldset className="form-section">
      <legend>Filter and key</legend>
      <Field
        id="f-spec-filter"
        label="Filter (CEL)"
        errors={reg.at('#/spec/filter')}
        warning={filterWarning}
        hint={<>Keep only the records for which this is true, e.g. <code>o.status != "CANCELLED"</code>. Leave empty to keep all.</>}
      >
        {(aria) => (
          <textarea
            {...aria}
            className="mono"
            rows={2}
            spellCheck={false}
            value={s.filter ?? ''}
            onChange={(e) => edit((d) => (spec(d).filter = e.target.value || undefined))}
          />
        )}
      </Field>
      <Field
        id="f-spec-key"
        label="Output key (CEL)"
        errors={reg.at('#/spec/key')}
        warning={s.key ? checkCel(s.key, aliases) : null}
        hint="One row per key in upsert mode, e.g. o.id."
      >
        {(aria) => (
          <input
            {...aria}
            type="text"
            className="mono"
            list={pathListId}
            spellCheck={false}
            autoComplete="off"
            value={s.key ?? ''}
            onChange={(e) => edit((d) => (spec(d).key = e.target.value || undefined))}
          />
        )}
      </Field>
    </fieldset>
  );

  // ---- fields ----
  const exprs = new Set(Object.values(fields).map(fieldExpr));
  const togglePath = (alias: string, field: string, on: boolean) =>
    edit((d) => {
      const sp = spec(d);
      const f = (sp.fields ??= {});
      const path = `${alias}.${field}`;
      if (on) f[freeName(f, field, alias)] = path;
      else for (const [k, v] of Object.entries(f)) if (fieldExpr(v) === path && typeof v === 'string') delete f[k];
    });
  const fieldNames = Object.keys(fields);
  const fieldsSection = (
    <fieldset className="form-section">
      <legend>Output fields</legend>
      <GroupErrors errors={reg.at('#/spec/fields')} />
      {srcFields.length === 0 ? <p className="muted">Choose a source to pick its fields.</p> : null}
      <div className="field-picker">
        {srcFields.map((sf) => (
          <fieldset key={sf.alias} className="picker-group">
            <legend>
              Fields of <code>{sf.alias}</code> ({sf.dataset})
            </legend>
            {sf.fields.length === 0 ? <p className="muted small">No schema known.</p> : null}
            <ul className="checklist">
              {sf.fields.map((f) => {
                const path = `${sf.alias}.${f.name}`;
                const cid = `${uid}-pick-${sf.alias}-${f.name}`;
                return (
                  <li key={f.name}>
                    <input id={cid} type="checkbox" checked={exprs.has(path)} onChange={(e) => togglePath(sf.alias, f.name, e.target.checked)} />
                    <label htmlFor={cid}>
                      <code>{path}</code>
                    </label>{' '}
                    <span className="muted small">{f.type}</span> {f.pii ? <PiiMark /> : null}
                  </li>
                );
              })}
            </ul>
          </fieldset>
        ))}
      </div>
      <div className="table-wrap" tabIndex={0}>
        <table className="data-table form-table">
          <caption>Output fields: name, expression (CEL) and type</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Expression</th>
              <th scope="col">Type</th>
              <th scope="col">
                <SrOnly>Actions</SrOnly>
              </th>
            </tr>
          </thead>
          <tbody>
            {fieldNames.length === 0 ? (
              <tr>
                <td colSpan={4} className="muted">
                  No fields yet: pick some above or add a computed one.
                </td>
              </tr>
            ) : null}
            {fieldNames.map((name, i) => (
              <FieldRow
                key={i}
                index={i}
                name={name}
                value={fields[name]}
                allNames={fieldNames}
                reg={reg}
                fieldPaths={fieldPaths}
                listId={pathListId}
                onRename={(to) => edit((d) => (spec(d).fields = renameKey(spec(d).fields ?? {}, name, to)))}
                onSet={(f) => edit((d) => ((spec(d).fields ??= {})[name] = f))}
                onRemove={() => edit((d) => delete spec(d).fields?.[name])}
              />
            ))}
          </tbody>
        </table>
      </div>
      <button
        type="button"
        className="btn btn-secondary"
        onClick={() =>
          edit((d) => {
            const f = (spec(d).fields ??= {});
            let n = 1;
            while (`computed_${n}` in f) n++;
            f[`computed_${n}`] = { expr: '', type: 'string' };
          })
        }
      >
        Add computed field
      </button>
      <datalist id={pathListId}>
        {fieldPaths.map((f) => (
          <option key={f.path} value={f.path} />
        ))}
      </datalist>
    </fieldset>
  );

  // ---- target ----
  const setTarget = (fn: (t: NonNullable<ProductSpecDraft['target']>) => void) =>
    edit((d) => {
      const t = (spec(d).target ??= { name: '' });
      fn(t);
    });
  const setOption = (key: string, value: unknown) =>
    setTarget((t) => {
      const o = { ...(t.options ?? {}) };
      if (value === undefined || value === '') delete o[key];
      else o[key] = value;
      t.options = Object.keys(o).length ? o : undefined;
    });
  const allowed = clusters.filter((c) => {
    const teamsAllowed = c.spec.allowedTeams ?? ['*'];
    return teamsAllowed.includes('*') || teamsAllowed.includes(team) || c.metadata.name === target.cluster;
  });
  const opts = target.options ?? {};
  const targetNameHint =
    targetType === 'postgres'
      ? 'The table (a view of that name, over versioned tables).'
      : targetType === 'elasticsearch'
        ? 'The index alias.'
        : targetType === 'redis'
          ? 'The key prefix.'
          : 'Table, index alias or key prefix.';
  const targetSection = (
    <fieldset className="form-section">
      <legend>Target</legend>
      <GroupErrors errors={[...reg.at('#/spec/target'), ...reg.at('#/spec/target/options'), ...reg.at('#/spec/target/dedicated')]} />
      <div className="grid-3">
        <Field id="f-spec-target-cluster" label="Target cluster" errors={reg.at('#/spec/target/cluster')}>
          {(aria) => (
            <select
              {...aria}
              value={target.cluster ?? ''}
              onChange={(e) =>
                setTarget((t) => {
                  const changedType = clusters.find((c) => c.metadata.name === e.target.value)?.spec.type !== targetType;
                  t.cluster = e.target.value || undefined;
                  if (changedType) t.options = undefined;
                })
              }
            >
              <option value="">Choose a cluster…</option>
              {allowed.map((c) => (
                <option key={c.metadata.name} value={c.metadata.name}>
                  {c.metadata.name} ({c.spec.type})
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field id="f-spec-target-name" label="Target name" errors={reg.at('#/spec/target/name')} hint={targetNameHint}>
          {(aria) => (
            <input {...aria} type="text" className="mono" autoComplete="off" spellCheck={false} value={target.name ?? ''} onChange={(e) => setTarget((t) => (t.name = e.target.value))} />
          )}
        </Field>
        <Field id="f-spec-target-mode" label="Write mode" errors={reg.at('#/spec/target/mode')}>
          {(aria) => (
            <select {...aria} value={target.mode ?? 'upsert'} onChange={(e) => setTarget((t) => (t.mode = e.target.value))}>
              <option value="upsert">upsert: one row per key</option>
              <option value="append">append: every event</option>
            </select>
          )}
        </Field>
      </div>
      {targetType === 'redis' ? (
        <div className="grid-3">
          <Field id="f-spec-target-options-type" label="Redis encoding" errors={reg.at('#/spec/target/options/type')}>
            {(aria) => (
              <select {...aria} value={String(opts.type ?? '')} onChange={(e) => setOption('type', e.target.value || undefined)}>
                <option value="">default (hash)</option>
                <option value="hash">hash: one field per column</option>
                <option value="json">json: one JSON string</option>
              </select>
            )}
          </Field>
          <Field id="f-spec-target-options-ttl" label="Time to live" errors={reg.at('#/spec/target/options/ttl')} hint="e.g. 7d; empty: keys never expire">
            {(aria) => <input {...aria} type="text" value={String(opts.ttl ?? '')} onChange={(e) => setOption('ttl', e.target.value || undefined)} />}
          </Field>
        </div>
      ) : null}
      {targetType === 'elasticsearch' ? (
        <div className="grid-3">
          <Field id="f-spec-target-options-shards" label="Shards" errors={reg.at('#/spec/target/options/shards')}>
            {(aria) => (
              <input {...aria} type="number" min={1} value={opts.shards === undefined ? '' : String(opts.shards)} onChange={(e) => setOption('shards', e.target.value === '' ? undefined : Number(e.target.value))} />
            )}
          </Field>
          <Field id="f-spec-target-options-replicas" label="Replicas" errors={reg.at('#/spec/target/options/replicas')}>
            {(aria) => (
              <input {...aria} type="number" min={0} value={opts.replicas === undefined ? '' : String(opts.replicas)} onChange={(e) => setOption('replicas', e.target.value === '' ? undefined : Number(e.target.value))} />
            )}
          </Field>
        </div>
      ) : null}
      <div className="grid-3">
        <Field id="f-spec-deletionPolicy" label="When the product is deleted" errors={reg.at('#/spec/deletionPolicy')}>
          {(aria) => (
            <select {...aria} value={s.deletionPolicy ?? 'Delete'} onChange={(e) => edit((d) => (spec(d).deletionPolicy = e.target.value))}>
              <option value="Delete">Delete the target</option>
              <option value="Retain">Retain the target</option>
            </select>
          )}
        </Field>
        <Field id="f-spec-slo-freshness" label="Freshness objective" errors={reg.at('#/spec/slo/freshness')} hint="Alert when live lag exceeds it, e.g. 5s">
          {(aria) => (
            <input
              {...aria}
              type="text"
              value={s.slo?.freshness ?? ''}
              onChange={(e) => edit((d) => (spec(d).slo = e.target.value ? { ...spec(d).slo, freshness: e.target.value } : undefined))}
            />
          )}
        </Field>
        <Field id="f-spec-expires" label="Expires on" errors={reg.at('#/spec/expires')} hint="Torn down after this date">
          {(aria) => <input {...aria} type="date" value={s.expires ?? ''} onChange={(e) => edit((d) => (spec(d).expires = e.target.value || undefined))} />}
        </Field>
      </div>
    </fieldset>
  );

  const unclaimed = reg.unclaimed();
  return (
    <div className="product-form">
      {unclaimed.length > 0 ? (
        <div className="alert alert-error" role="alert">
          <p className="alert-title">Other problems in the request</p>
          <ul className="field-error-list">
            {unclaimed.map((e, i) => (
              <li key={i}>
                <code>{e.pointer.replace(/^#/, '')}</code>: {e.detail}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {basics}
      {sourcesSection}
      {joinsSection}
      {filterSection}
      {fieldsSection}
      {targetSection}
    </div>
  );
}

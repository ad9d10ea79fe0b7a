// The live dry-run of the product being edited: 400 ms after the document last changed,
// POST /products/{team}/{name}/plan; an older answer never replaces a newer one.
import { useEffect, useRef, useState } from 'react';
import { postPlan } from '../api/endpoints';
import { ApiError } from '../api/problem';
import type { FieldError, Problem } from '../api/problem';
import type { Plan, ProductDoc } from '../api/types';
import { DNS_LABEL } from './spec';

export type PlanState =
  | { state: 'idle'; message: string }
  | { state: 'checking'; plan?: Plan }
  | { state: 'valid'; plan: Plan }
  | { state: 'invalid'; errors: FieldError[]; problem: Problem }
  | { state: 'error'; problem: Problem };

export const PLAN_DEBOUNCE_MS = 400;

/**
 * What the request still lacks before a dry run can say anything useful. Until these are
 * there the plan is not asked for (each answer would be the same 422 about them).
 */
export function missingForPlan(doc: ProductDoc): string[] {
  const s = doc.spec ?? {};
  const missing: string[] = [];
  if (!(s.sources ?? []).some((x) => x.dataset)) missing.push('a source');
  if (!Object.keys(s.fields ?? {}).length) missing.push('an output field');
  if (!s.target?.cluster && !s.target?.dedicated) missing.push('a target cluster');
  if (!s.target?.name) missing.push('a target name');
  return missing;
}

export function usePlan(doc: ProductDoc, revision: number, yamlInvalid: boolean, debounceMs = PLAN_DEBOUNCE_MS): PlanState {
  const [st, setSt] = useState<PlanState>({ state: 'idle', message: 'Enter a team and a name to check the request.' });
  const seq = useRef(0);
  const lastPlan = useRef<Plan | undefined>(undefined);
  const team = doc.metadata?.team ?? '';
  const name = doc.metadata?.name ?? '';

  useEffect(() => {
    if (yamlInvalid) {
      setSt({ state: 'idle', message: 'Fix the YAML error to check the request.' });
      return;
    }
    if (!team || !name) {
      setSt({ state: 'idle', message: 'Enter a team and a name to check the request.' });
      return;
    }
    if (!DNS_LABEL.test(team) || !DNS_LABEL.test(name)) {
      setSt({ state: 'idle', message: 'The team and the name must be DNS labels (lowercase letters, digits and dashes).' });
      return;
    }
    const missing = missingForPlan(doc);
    if (missing.length) {
      setSt({ state: 'idle', message: `To see the plan, add ${missing.join(', ').replace(/, ([^,]*)$/, ' and $1')}.` });
      return;
    }
    const my = ++seq.current;
    const ctrl = new AbortController();
    setSt({ state: 'checking', plan: lastPlan.current });
    const timer = setTimeout(() => {
      postPlan(team, name, doc, ctrl.signal)
        .then((plan) => {
          if (my !== seq.current) return;
          lastPlan.current = plan;
          setSt({ state: 'valid', plan });
        })
        .catch((e: unknown) => {
          if (my !== seq.current || ctrl.signal.aborted) return;
          if (e instanceof ApiError && e.status === 422) {
            setSt({ state: 'invalid', errors: e.fieldErrors, problem: e.problem });
          } else if (e instanceof ApiError) {
            setSt({ state: 'error', problem: e.problem });
          } else if (!(e instanceof DOMException && e.name === 'AbortError')) {
            setSt({ state: 'error', problem: { title: 'The plan failed', status: 0, detail: String(e) } });
          }
        });
    }, debounceMs);
    return () => {
      clearTimeout(timer);
      ctrl.abort();
    };
    // `revision` stands for `doc`.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [revision, yamlInvalid, team, name]);

  return st;
}

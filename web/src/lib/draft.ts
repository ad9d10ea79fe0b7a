// The product editor's state: ONE source of truth, the product document. The form edits
// it; the YAML editor shows `yaml.stringify` of it; YAML edits re-parse and replace it when
// they are valid, and otherwise keep the user's text (with the parse error and its line)
// while the document stays at its last valid value.
import { stringify } from 'yaml';
import type { ProductDoc } from '../api/types';
import { clean } from './spec';
import { parseYaml } from './yamlPointer';
import type { YamlProblem } from './yamlPointer';

export interface DraftState {
  doc: ProductDoc;
  yamlText: string;
  yamlError: YamlProblem | null;
  /** Bumped whenever `doc` changes (drives the dry-run plan). */
  revision: number;
  /** Who made the last change. */
  origin: 'load' | 'form' | 'yaml';
}

export type DraftAction =
  | { type: 'load'; doc: ProductDoc }
  | { type: 'form'; update: (doc: ProductDoc) => ProductDoc }
  | { type: 'yaml'; text: string };

export function toYaml(doc: ProductDoc): string {
  return stringify(clean(doc), { lineWidth: 0, aliasDuplicateObjects: false });
}

export function initDraft(doc: ProductDoc): DraftState {
  const d = clean(doc);
  return { doc: d, yamlText: toYaml(d), yamlError: null, revision: 0, origin: 'load' };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function draftReducer(state: DraftState, action: DraftAction): DraftState {
  switch (action.type) {
    case 'load':
      return { ...initDraft(action.doc), revision: state.revision + 1 };
    case 'form': {
      const doc = clean(action.update(structuredClone(state.doc)));
      return { doc, yamlText: toYaml(doc), yamlError: null, revision: state.revision + 1, origin: 'form' };
    }
    case 'yaml': {
      const { value, error } = parseYaml(action.text);
      if (error) return { ...state, yamlText: action.text, yamlError: error, origin: 'yaml' };
      if (!value || typeof value !== 'object' || Array.isArray(value)) {
        return {
          ...state,
          yamlText: action.text,
          yamlError: {
            message: 'the document must be a mapping with apiVersion, kind, metadata and spec',
            line: 1,
            col: 1,
            from: 0,
            to: 0,
          },
          origin: 'yaml',
        };
      }
      const doc = value as ProductDoc;
      const changed = !same(doc, state.doc);
      return {
        doc,
        yamlText: action.text,
        yamlError: null,
        revision: changed ? state.revision + 1 : state.revision,
        origin: 'yaml',
      };
    }
  }
}

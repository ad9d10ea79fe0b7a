// A CodeMirror 6 YAML editor: schema-aware completion, lint markers for parse errors and the
// API's field errors, and a value kept in sync with the parent (external changes replace
// only the text that differs, so the cursor stays where it was).
import { useEffect, useRef } from 'react';
import { Annotation, Compartment, EditorState } from '@codemirror/state';
import type { Extension } from '@codemirror/state';
import {
  EditorView,
  drawSelection,
  dropCursor,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from '@codemirror/view';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { HighlightStyle, bracketMatching, foldGutter, foldKeymap, indentOnInput, syntaxHighlighting } from '@codemirror/language';
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap } from '@codemirror/autocomplete';
import type { CompletionContext, CompletionResult } from '@codemirror/autocomplete';
import { lintGutter, lintKeymap, setDiagnostics } from '@codemirror/lint';
import type { Diagnostic } from '@codemirror/lint';
import { highlightSelectionMatches, searchKeymap } from '@codemirror/search';
import { yaml } from '@codemirror/lang-yaml';
import { tags as t } from '@lezer/highlight';
import { cursorContext, suggest } from '../lib/yamlCompletion';
import type { CatalogHints, Schema } from '../lib/yamlCompletion';

export interface EditorDiagnostic {
  from: number;
  to: number;
  severity: 'error' | 'warning' | 'info';
  message: string;
}

export interface CompletionSource {
  schema: Schema | null;
  hints: CatalogHints;
}

interface Props {
  id?: string;
  value: string;
  onChange?: (text: string) => void;
  diagnostics?: EditorDiagnostic[];
  /** Read at every completion request, so it may change without reconfiguring. */
  completion?: () => CompletionSource;
  readOnly?: boolean;
  /** Accessible name of the editing surface. */
  label: string;
  describedBy?: string;
  minHeight?: string;
}

const External = Annotation.define<boolean>();

const highlight = HighlightStyle.define([
  { tag: [t.propertyName, t.definition(t.propertyName)], color: 'var(--syn-key)' },
  { tag: [t.string, t.special(t.string)], color: 'var(--syn-string)' },
  { tag: [t.number, t.bool, t.null, t.atom], color: 'var(--syn-number)' },
  { tag: [t.comment, t.lineComment], color: 'var(--syn-comment)', fontStyle: 'italic' },
  { tag: [t.keyword, t.meta, t.typeName], color: 'var(--syn-keyword)' },
  { tag: [t.punctuation, t.separator, t.squareBracket, t.brace], color: 'var(--text-muted)' },
]);

const theme = EditorView.theme({
  '&': { color: 'var(--text)', backgroundColor: 'var(--surface)', fontSize: '13px' },
  '.cm-content': { fontFamily: 'var(--mono)', caretColor: 'var(--text)' },
  '.cm-gutters': { backgroundColor: 'var(--surface-2)', color: 'var(--text-muted)', borderRight: '1px solid var(--border)' },
  '.cm-activeLine': { backgroundColor: 'var(--active-line)' },
  '.cm-activeLineGutter': { backgroundColor: 'var(--active-line)' },
  '&.cm-focused': { outline: '3px solid var(--focus)', outlineOffset: '1px' },
  '&.cm-focused .cm-cursor': { borderLeftColor: 'var(--text)' },
  '&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection': { backgroundColor: 'var(--selection)' },
  '.cm-tooltip': { backgroundColor: 'var(--surface)', color: 'var(--text)', border: '1px solid var(--border)' },
  '.cm-tooltip-autocomplete ul li[aria-selected]': { backgroundColor: 'var(--accent)', color: 'var(--on-accent)' },
  '.cm-completionDetail': { color: 'inherit', opacity: '0.8' },
  '.cm-diagnostic-error': { borderLeftColor: 'var(--danger)' },
  '.cm-diagnostic-warning': { borderLeftColor: 'var(--warning)' },
});

function contentAttributes(label: string, describedBy?: string, id?: string): Extension {
  return EditorView.contentAttributes.of({
    'aria-label': label,
    ...(describedBy ? { 'aria-describedby': describedBy } : {}),
    ...(id ? { id } : {}),
  });
}

function commonEdit(a: string, b: string): { from: number; to: number; insert: string } | null {
  if (a === b) return null;
  let start = 0;
  const min = Math.min(a.length, b.length);
  while (start < min && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  return { from: start, to: endA, insert: b.slice(start, endB) };
}

export function YamlEditor({ id, value, onChange, diagnostics, completion, readOnly, label, describedBy, minHeight = '24rem' }: Props) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const onChangeRef = useRef(onChange);
  const completionRef = useRef(completion);
  const attributes = useRef(new Compartment());
  onChangeRef.current = onChange;
  completionRef.current = completion;

  useEffect(() => {
    if (!host.current) return;
    const source = (ctx: CompletionContext): CompletionResult | null => {
      const src = completionRef.current?.();
      if (!src?.schema) return null;
      const word = ctx.matchBefore(/[\w.$-]*/);
      if (!word) return null;
      if (word.from === word.to && !ctx.explicit) {
        // Open on an empty word only where something obvious follows (after `key: `).
        const lineBefore = ctx.state.doc.lineAt(ctx.pos).text.slice(0, ctx.pos - ctx.state.doc.lineAt(ctx.pos).from);
        if (!/:\s$/.test(lineBefore) && !/^\s*(- )?$/.test(lineBefore)) return null;
      }
      const cc = cursorContext(ctx.state.doc.toString(), ctx.pos);
      const items = suggest(src.schema, cc, src.hints);
      if (!items.length) return null;
      return {
        from: word.from,
        options: items.map((s) => ({
          label: s.label,
          apply: s.apply,
          type: s.type,
          detail: s.detail,
          info: s.info,
          boost: s.boost,
        })),
        validFor: /^[\w.$-]*$/,
      };
    };
    const extensions: Extension[] = [
      lineNumbers(),
      highlightActiveLineGutter(),
      highlightSpecialChars(),
      history(),
      foldGutter(),
      drawSelection(),
      dropCursor(),
      indentOnInput(),
      syntaxHighlighting(highlight),
      bracketMatching(),
      closeBrackets(),
      highlightActiveLine(),
      highlightSelectionMatches(),
      autocompletion({ override: [source], activateOnTyping: true }),
      lintGutter(),
      keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...foldKeymap, ...completionKeymap, ...lintKeymap]),
      yaml(),
      theme,
      EditorState.tabSize.of(2),
      EditorView.lineWrapping,
      attributes.current.of(contentAttributes(label, describedBy, id)),
      EditorState.readOnly.of(!!readOnly),
      EditorView.editable.of(!readOnly),
      EditorView.updateListener.of((u) => {
        if (!u.docChanged) return;
        if (u.transactions.some((tr) => tr.annotation(External))) return;
        onChangeRef.current?.(u.state.doc.toString());
      }),
    ];
    const v = new EditorView({ parent: host.current, state: EditorState.create({ doc: value, extensions }) });
    view.current = v;
    return () => {
      v.destroy();
      view.current = null;
    };
    // The view is created once; value, diagnostics and attributes are synced below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [readOnly]);

  useEffect(() => {
    view.current?.dispatch({ effects: attributes.current.reconfigure(contentAttributes(label, describedBy, id)) });
  }, [label, describedBy, id]);

  useEffect(() => {
    const v = view.current;
    if (!v) return;
    const edit = commonEdit(v.state.doc.toString(), value);
    if (edit) v.dispatch({ changes: edit, annotations: External.of(true) });
  }, [value]);

  useEffect(() => {
    const v = view.current;
    if (!v) return;
    const len = v.state.doc.length;
    const diags: Diagnostic[] = (diagnostics ?? []).map((d) => {
      const from = Math.min(Math.max(0, d.from), len);
      return { from, to: Math.min(Math.max(from, d.to), len), severity: d.severity, message: d.message };
    });
    v.dispatch(setDiagnostics(v.state, diags));
  }, [diagnostics, value]);

  return <div ref={host} className="yaml-editor" style={{ minHeight }} data-testid="yaml-editor" />;
}

/** Moves the cursor of the editor inside `container` to `pos` and focuses it. */
export function focusEditorAt(container: HTMLElement | null, pos: number): void {
  const el = container?.querySelector('.cm-editor');
  if (!el) return;
  const v = EditorView.findFromDOM(el as HTMLElement);
  if (!v) return;
  const p = Math.min(pos, v.state.doc.length);
  v.dispatch({ selection: { anchor: p }, scrollIntoView: true });
  v.focus();
}

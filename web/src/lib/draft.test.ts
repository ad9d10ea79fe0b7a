import { describe, expect, it } from 'vitest';
import { draftReducer, initDraft } from './draft';
import { emptyProduct } from './spec';

describe('draft: one product document, form and YAML in sync', () => {
  it('a form edit re-renders the YAML', () => {
    let s = initDraft(emptyProduct('team-a'));
    s = draftReducer(s, { type: 'form', update: (d) => ({ ...d, metadata: { ...d.metadata, name: 'orders' } }) });
    expect(s.yamlText).toContain('name: orders');
    expect(s.yamlText).toContain('team: team-a');
    expect(s.revision).toBe(1);
    expect(s.origin).toBe('form');
  });

  it('valid YAML replaces the document', () => {
    const s0 = initDraft(emptyProduct('team-a'));
    const text = s0.yamlText.replace('name: ""', 'name: from-yaml');
    const s = draftReducer(s0, { type: 'yaml', text });
    expect(s.doc.metadata?.name).toBe('from-yaml');
    expect(s.yamlError).toBeNull();
    expect(s.yamlText).toBe(text);
    expect(s.revision).toBe(1);
  });

  it('invalid YAML keeps the text and the last valid document, with the error line', () => {
    const s0 = draftReducer(initDraft(emptyProduct('team-a')), { type: 'form', update: (d) => ({ ...d, metadata: { ...d.metadata, name: 'kept' } }) });
    const bad = 'apiVersion: sluice.dev/v1alpha1\nkind: DataProduct\nmetadata:\n  name: [unclosed\n';
    const s = draftReducer(s0, { type: 'yaml', text: bad });
    expect(s.yamlText).toBe(bad);
    expect(s.doc.metadata?.name).toBe('kept');
    expect(s.yamlError).not.toBeNull();
    expect(s.yamlError!.line).toBeGreaterThanOrEqual(4);
    expect(s.revision).toBe(s0.revision);
  });

  it('a YAML edit that changes nothing (whitespace, comments) does not re-plan', () => {
    const s0 = initDraft(emptyProduct('team-a'));
    const s = draftReducer(s0, { type: 'yaml', text: `# my comment\n${s0.yamlText}\n\n` });
    expect(s.revision).toBe(s0.revision);
    expect(s.yamlText.startsWith('# my comment')).toBe(true);
  });

  it('a document that is not a mapping is an error', () => {
    const s = draftReducer(initDraft(emptyProduct()), { type: 'yaml', text: '- just\n- a list\n' });
    expect(s.yamlError?.message).toMatch(/mapping/);
  });
});

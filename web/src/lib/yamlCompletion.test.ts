import { describe, expect, it } from 'vitest';
import { cursorContext, schemasAt, suggest } from './yamlCompletion';
import type { Schema } from './yamlCompletion';

const schema: Schema = {
  type: 'object',
  properties: {
    apiVersion: { const: 'sluice.dev/v1alpha1' },
    kind: { const: 'DataProduct' },
    metadata: { $ref: '#/$defs/Meta' },
    spec: { $ref: '#/$defs/Spec' },
    status: { readOnly: true },
  },
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  $defs: {
    Meta: { type: 'object', properties: { name: { type: 'string' }, team: { type: ['string', 'null'] } } },
    Spec: {
      type: 'object',
      properties: {
        sources: { type: 'array', items: { $ref: '#/$defs/Source' } },
        joins: { type: 'array', items: { type: 'object', properties: { type: { oneOf: [{ const: 'lookup' }, { const: 'window' }] }, right: { type: 'string' }, on: { type: 'string' } } } },
        fields: { type: 'object', additionalProperties: { anyOf: [{ type: 'string' }, { type: 'object', properties: { expr: { type: 'string' }, type: { type: 'string' } } }] } },
        target: { type: 'object', properties: { cluster: { type: 'string' }, name: { type: 'string' }, mode: { oneOf: [{ const: 'upsert' }, { const: 'append' }] } } },
      },
    },
    Source: { type: 'object', properties: { name: { type: 'string' }, dataset: { type: 'string' }, from: { type: 'string' } }, required: ['name', 'dataset'] },
  },
};

const hints = {
  datasets: ['shop.orders', 'crm.customers'],
  clusters: ['shared-pg'],
  aliases: ['o', 'c'],
  fieldPaths: [{ path: 'o.id', type: 'string', pii: false }],
};

const at = (text: string) => cursorContext(text.replace('|', ''), text.indexOf('|'));

describe('cursorContext', () => {
  it('finds the path of a key being typed in block style', () => {
    expect(at('spec:\n  target:\n    clu|')).toMatchObject({ path: ['spec', 'target'], mode: 'key', prefix: 'clu' });
  });
  it('finds values inside sequences, indented or not', () => {
    expect(at('spec:\n  sources:\n    - name: o\n      dataset: sh|')).toMatchObject({ path: ['spec', 'sources', 0, 'dataset'], mode: 'value', prefix: 'sh' });
    expect(at('spec:\n  sources:\n  - name: o\n  - name: c\n    dataset: |')).toMatchObject({ path: ['spec', 'sources', 1, 'dataset'], mode: 'value' });
  });
  it('finds keys and values inside a flow mapping', () => {
    expect(at('spec:\n  sources:\n    - {name: o, dataset: |')).toMatchObject({ path: ['spec', 'sources', 0, 'dataset'], mode: 'value' });
    expect(at('spec:\n  target: {cluster: shared-pg, mo|')).toMatchObject({ path: ['spec', 'target'], mode: 'key', prefix: 'mo', siblings: ['cluster'] });
  });
  it('lists the sibling keys already present', () => {
    expect(at('metadata:\n  name: x\n  |').siblings).toEqual(['name']);
  });
});

describe('suggest', () => {
  it('offers the properties the schema allows, required first, without those present or read-only', () => {
    const s = suggest(schema, at('|'), hints);
    expect(s.map((x) => x.label)).toEqual(['apiVersion', 'kind', 'metadata', 'spec']);
    expect(suggest(schema, at('metadata:\n  name: x\n  |'), hints).map((x) => x.label)).toEqual(['team']);
  });
  it('offers enum constants, dataset names, clusters, aliases and field paths by position', () => {
    expect(suggest(schema, at('spec:\n  target:\n    mode: |'), hints).map((x) => x.label)).toEqual(['upsert', 'append']);
    expect(suggest(schema, at('spec:\n  sources:\n    - dataset: |'), hints).map((x) => x.label)).toEqual(['shop.orders', 'crm.customers']);
    expect(suggest(schema, at('spec:\n  target:\n    cluster: |'), hints).map((x) => x.label)).toEqual(['shared-pg']);
    expect(suggest(schema, at('spec:\n  joins:\n    - right: |'), hints).map((x) => x.label)).toEqual(['c']);
    expect(suggest(schema, at('spec:\n  fields:\n    order_id: |'), hints).map((x) => x.label)).toContain('o.id');
  });
  it('walks $ref, anyOf and additionalProperties', () => {
    expect(schemasAt(schema, ['spec', 'fields', 'x']).length).toBe(2);
  });
});

import { describe, expect, it } from 'vitest';
import { locatePointer, parseYaml } from './yamlPointer';

const doc = `apiVersion: sluice.dev/v1alpha1
kind: DataProduct
metadata:
  name: orders
  team: team-a
spec:
  sources:
    - {name: o, dataset: shop.orders, from: 90d}
    - name: c
      dataset: crm.clients
  fields:
    order_id: o.id
    total: {expr: "o.amount *", type: number}
  target: {cluster: shared-pg}
`;

describe('locatePointer', () => {
  it('finds scalar values by JSON pointer', () => {
    expect(locatePointer(doc, '#/spec/sources/1/dataset')).toMatchObject({ line: 10, exact: true });
    expect(locatePointer(doc, '#/metadata/name')).toMatchObject({ line: 4, exact: true });
    expect(locatePointer(doc, '#/spec/sources/0/from')).toMatchObject({ line: 8, exact: true });
  });

  it('points at the key of a mapping value and at the nearest ancestor of a missing member', () => {
    expect(locatePointer(doc, '#/spec/fields/total')).toMatchObject({ line: 13 });
    expect(locatePointer(doc, '#/spec/target/name')).toMatchObject({ line: 14, exact: false });
  });

  it('decodes ~1 and ~0 in pointers', () => {
    const t = 'spec:\n  fields:\n    "a/b": x\n';
    expect(locatePointer(t, '#/spec/fields/a~1b')).toMatchObject({ line: 3, exact: true });
  });
});

describe('parseYaml', () => {
  it('reports the line and column of a syntax error', () => {
    const r = parseYaml('a: 1\nb: [2\nc: 3\n');
    expect(r.error).not.toBeNull();
    expect(r.error!.line).toBeGreaterThanOrEqual(2);
  });
  it('refuses duplicate keys', () => {
    expect(parseYaml('a: 1\na: 2\n').error?.line).toBe(2);
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { EditorView } from '@codemirror/view';
import { ProductEditor } from './ProductEditor';
import { emptyProduct } from '../lib/spec';
import { clusters, datasets, plan } from '../test/fixtures';
import { json, problem, stubFetch } from '../test/fetch';

function editorView(): EditorView {
  const el = screen.getByTestId('yaml-editor').querySelector('.cm-editor');
  const view = el && EditorView.findFromDOM(el as HTMLElement);
  if (!view) throw new Error('no CodeMirror view');
  return view;
}

/** Types into the YAML editor as a person would: a change of the document by the user. */
function typeYaml(text: string) {
  const view = editorView();
  act(() => {
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text }, userEvent: 'input.type' });
  });
}

function renderEditor(props: Partial<Parameters<typeof ProductEditor>[0]> = {}) {
  return render(
    <ProductEditor initial={emptyProduct('team-a')} datasets={datasets} clusters={clusters} schema={null} debounceMs={0} {...props} />,
  );
}

const validYaml = `apiVersion: sluice.dev/v1alpha1
kind: DataProduct
metadata:
  name: open-orders
  team: team-a
spec:
  sources:
    - {name: o, dataset: shop.orders, from: 7d}
  key: o.id
  fields:
    status: o.status
    amount_cents: {expr: "int(o.amount * 100.0)", type: integer}
  target: {cluster: shared-pg, name: open_orders, mode: upsert}
`;

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('ProductEditor: form → YAML', () => {
  it('shows what the form sets in the YAML editor', async () => {
    stubFetch({ 'POST /api/v1/products/team-a/orders-enriched/plan': () => json(plan) });
    const user = userEvent.setup();
    renderEditor();
    await user.type(screen.getByLabelText('Name'), 'orders-enriched');
    await user.click(screen.getByRole('button', { name: 'Add source' }));
    await user.selectOptions(screen.getByLabelText('Source 1 Dataset'), 'shop.orders');
    await user.click(screen.getByLabelText('o.amount'));
    await user.selectOptions(screen.getByLabelText('Target cluster'), 'shared-pg');
    await user.type(screen.getByLabelText('Target name'), 'orders_enriched');

    const yaml = editorView().state.doc.toString();
    expect(yaml).toContain('name: orders-enriched');
    expect(yaml).toContain('dataset: shop.orders');
    expect(yaml).toMatch(/name: o\n/); // the suggested alias
    expect(yaml).toContain('key: o.id'); // the driving dataset's key
    expect(yaml).toContain('amount: o.amount');
    expect(yaml).toContain('cluster: shared-pg');
    expect(yaml).toContain('name: orders_enriched');

    // Rename the picked field and make a computed one.
    const nameInput = screen.getByLabelText('Field 1 name');
    await user.clear(nameInput);
    await user.type(nameInput, 'total');
    await user.click(screen.getByRole('button', { name: 'Add computed field' }));
    await user.type(screen.getByLabelText('Field 2 expression'), 'o.amount * 2.0');
    await user.selectOptions(screen.getByLabelText('Field 2 type'), 'number');
    const after = editorView().state.doc.toString();
    expect(after).toContain('total: o.amount');
    expect(after).not.toContain('amount: o.amount');
    expect(after).toMatch(/computed_1:\n\s+expr: o\.amount \* 2\.0\n\s+type: number/);

    // The plan preview of the valid request.
    await waitFor(() => expect(screen.getByTestId('plan-status').textContent).toBe('Valid.'));
    expect(screen.getAllByText(/8,516/).length).toBeGreaterThan(0);
    expect(screen.getByText(/about/).textContent).toContain('1 s');
  });

  it('adds a join with key pickers when a second source is chosen', async () => {
    stubFetch({});
    const user = userEvent.setup();
    renderEditor();
    await user.click(screen.getByRole('button', { name: 'Add source' }));
    await user.selectOptions(screen.getByLabelText('Source 1 Dataset'), 'shop.orders');
    await user.click(screen.getByRole('button', { name: 'Add source' }));
    await user.selectOptions(screen.getByLabelText('Source 2 Dataset'), 'crm.customers');
    expect((screen.getByLabelText('Join 1 Type') as HTMLSelectElement).value).toBe('lookup');
    expect((screen.getByLabelText('Join 1 Condition (CEL)') as HTMLInputElement).value).toBe('o.customer_id == c.id');
    await user.selectOptions(screen.getByLabelText('Join 1 Key of c'), 'c.name');
    expect(editorView().state.doc.toString()).toContain('on: o.customer_id == c.name');
  });
});

describe('ProductEditor: YAML → form', () => {
  it('fills the form from valid YAML', async () => {
    stubFetch({ 'POST /api/v1/products/team-a/open-orders/plan': () => json(plan) });
    renderEditor({ initialTab: 'yaml' });
    typeYaml(validYaml);
    await userEvent.setup().click(screen.getByRole('tab', { name: 'Form' }));
    expect((screen.getByLabelText('Name') as HTMLInputElement).value).toBe('open-orders');
    expect((screen.getByLabelText('Source 1 Dataset') as HTMLSelectElement).value).toBe('shop.orders');
    expect((screen.getByLabelText('Source 1 Read from') as HTMLInputElement).value).toBe('7d');
    expect((screen.getByLabelText('Field 2 name') as HTMLInputElement).value).toBe('amount_cents');
    expect((screen.getByLabelText('Field 2 type') as HTMLSelectElement).value).toBe('integer');
    expect((screen.getByLabelText('Target cluster') as HTMLSelectElement).value).toBe('shared-pg');
    expect((screen.getByLabelText('o.status') as HTMLInputElement).checked).toBe(true);
    await waitFor(() => expect(screen.getByTestId('plan-status').textContent).toBe('Valid.'));
  });

  it('keeps invalid YAML as typed, shows the error with its line, and freezes the form', async () => {
    stubFetch({});
    renderEditor({ initialTab: 'yaml' });
    typeYaml(validYaml);
    const view = editorView();
    const broken = validYaml.replace('  key: o.id\n', '  key: [o.id\n');
    typeYaml(broken);
    expect(editorView().state.doc.toString()).toBe(broken);
    // The same editor goes on (a new one would lose the cursor and the typing).
    expect(editorView()).toBe(view);
    const alert = screen.getByRole('alert');
    expect(alert.textContent).toMatch(/YAML error on line (9|1\d)/);
    // The form shows the last valid version, read-only.
    await userEvent.setup().click(screen.getByRole('tab', { name: 'Form' }));
    const name = screen.getByLabelText('Name') as HTMLInputElement;
    expect(name.value).toBe('open-orders');
    expect(name.closest('fieldset:disabled')).not.toBeNull();
    expect(screen.getByText(/the form shows the last valid version/)).toBeTruthy();
    // Fixing the YAML brings the form back.
    typeYaml(validYaml.replace('name: open-orders', 'name: fixed'));
    expect(name.value).toBe('fixed');
    expect(name.closest('fieldset:disabled')).toBeNull();
  });
});

describe('ProductEditor: problem+json field errors', () => {
  it('shows each error at its field and on its YAML line', async () => {
    stubFetch({
      'POST /api/v1/products/team-a/open-orders/plan': () =>
        problem(422, 'the document is invalid', [
          { pointer: '#/spec/sources/0/dataset', detail: 'no dataset `shop.orders` in the catalog' },
          { pointer: '#/spec/fields/amount_cents', detail: 'CEL: at 1:12: Syntax error' },
          { pointer: '#/spec/target/name', detail: 'is taken by team-b/orders' },
          { pointer: '#/spec/bogus', detail: 'unknown field; check the spelling against the published schema' },
        ]),
    });
    renderEditor({ initialTab: 'yaml' });
    typeYaml(validYaml);
    await waitFor(() => expect(screen.getByTestId('plan-status').textContent).toBe('4 problems to fix.'));

    // YAML: each located error is listed with its line.
    const problems = screen.getByRole('heading', { name: 'Problems' }).parentElement!;
    expect(within(problems).getByRole('button', { name: 'Line 8' })).toBeTruthy();
    expect(within(problems).getByRole('button', { name: 'Line 12' })).toBeTruthy();
    expect(within(problems).getByRole('button', { name: 'Line 13' })).toBeTruthy();

    // Form: at the fields, wired with aria-invalid and aria-describedby.
    fireEvent.click(screen.getByRole('tab', { name: 'Form' }));
    const dataset = screen.getByLabelText('Source 1 Dataset');
    expect(dataset.getAttribute('aria-invalid')).toBe('true');
    expect(document.getElementById(dataset.getAttribute('aria-describedby')!.split(' ')[0])!.textContent).toBe('no dataset `shop.orders` in the catalog');
    const expr = screen.getByLabelText('Field 2 expression');
    expect(expr.getAttribute('aria-invalid')).toBe('true');
    expect(document.getElementById(expr.getAttribute('aria-describedby')!.split(' ')[0])!.textContent).toContain('Syntax error');
    const target = screen.getByLabelText('Target name');
    expect(document.getElementById(target.getAttribute('aria-describedby')!.split(' ')[0])!.textContent).toBe('is taken by team-b/orders');
    // An error no field claims is listed above the form.
    const other = screen.getByText('Other problems in the request').parentElement!;
    expect(other.textContent).toContain('/spec/bogus');
    expect(other.textContent).not.toContain('/spec/target/name');
  });

  it('submits with PUT and shows a refusal at the fields', async () => {
    const calls = stubFetch({
      'POST /api/v1/products/team-a/open-orders/plan': () => json(plan),
      'PUT /api/v1/products/team-a/open-orders': () =>
        problem(422, 'the document is invalid', [{ pointer: '#/spec/target/cluster', detail: 'team-a may not use cluster shared-pg' }]),
    });
    const onSubmitted = vi.fn();
    renderEditor({ initialTab: 'yaml', onSubmitted });
    typeYaml(validYaml);
    await userEvent.setup().click(screen.getByRole('button', { name: 'Submit request' }));
    await waitFor(() => expect(screen.getByText('The request was not accepted')).toBeTruthy());
    const put = calls.find((c) => c.method === 'PUT')!;
    expect((put.body as { spec: { target: { name: string } } }).spec.target.name).toBe('open_orders');
    fireEvent.click(screen.getByRole('tab', { name: 'Form' }));
    const cluster = screen.getByLabelText('Target cluster');
    expect(cluster.getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByText('team-a may not use cluster shared-pg')).toBeTruthy();
    expect(onSubmitted).not.toHaveBeenCalled();
  });
});

describe('ProductEditor: plan preview', () => {
  it('asks for the plan only once the request has sources, fields and a target', async () => {
    const calls = stubFetch({});
    const user = userEvent.setup();
    renderEditor();
    await user.type(screen.getByLabelText('Name'), 'x');
    expect(screen.getByTestId('plan-status').textContent).toBe(
      'To see the plan, add a source, an output field, a target cluster and a target name.',
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(calls.filter((c) => c.url.endsWith('/plan'))).toEqual([]);
  });
});

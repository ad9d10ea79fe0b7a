import { afterEach, describe, expect, it, vi } from 'vitest';
import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { MemoryRouter } from 'react-router';
import { StaticSession } from '../auth/session';
import { Approvals } from './Approvals';
import { datasets } from '../test/fixtures';
import { json, problem, stubFetch } from '../test/fetch';

const product = {
  apiVersion: 'sluice.dev/v1alpha1',
  kind: 'DataProduct',
  metadata: { name: 'orders-enriched', team: 'team-payments', generation: 2 },
  spec: {
    sources: [
      { name: 'o', dataset: 'shop.orders', from: '90d' },
      { name: 'c', dataset: 'crm.customers' },
    ],
    joins: [{ type: 'lookup', right: 'c', on: 'o.customer_id == c.id' }],
    fields: { order_id: 'o.id', email: 'c.email' },
    target: { cluster: 'shared-pg', name: 'orders_enriched' },
  },
  status: {
    phase: 'PendingApproval',
    approval: { generation: 2, requestedBy: 'bob (requester@team-payments)', required: ['platform', 'owner:team-crm'], granted: [], reasons: ['reads confidential dataset crm.customers'] },
    approvedSpec: { sources: [{ name: 'o', dataset: 'shop.orders', from: '90d' }], fields: { order_id: 'o.id' }, target: { cluster: 'shared-pg', name: 'orders_enriched' } },
  },
};

afterEach(() => vi.unstubAllGlobals());

function renderInbox() {
  return render(
    <StaticSession me={{ name: 'carol', team: 'platform', role: 'approver', via: 'token' }}>
      <MemoryRouter>
        <Approvals />
      </MemoryRouter>
    </StaticSession>,
  );
}

describe('Approvals inbox', () => {
  it('shows classified sources, PII fields and the diff, and approves with the comment and generation', async () => {
    const calls = stubFetch({
      'GET /api/v1/approvals': () => json({ items: [product] }),
      'GET /api/v1/datasets': () => json({ items: datasets }),
      'POST /api/v1/products/team-payments/orders-enriched/approve': () => json({ ...product, status: { ...product.status, message: 'generation 2 awaits approval by owner:team-crm' } }),
    });
    const user = userEvent.setup();
    renderInbox();
    await screen.findByRole('heading', { name: /team-payments\/orders-enriched/ });
    expect(screen.getByText('c.email')).toBeTruthy(); // a PII field taken
    expect(screen.getByText(/crm\.customers \(owner team-crm\)/)).toBeTruthy();
    expect(screen.getByText('reads confidential dataset crm.customers')).toBeTruthy();
    expect(screen.getByLabelText('Spec changes of team-payments/orders-enriched').textContent).toContain('email: c.email');

    await user.type(screen.getByLabelText('Comment on team-payments/orders-enriched'), 'ok for platform');
    await user.click(screen.getByRole('button', { name: 'Approve team-payments/orders-enriched' }));
    await waitFor(() => expect(screen.getByText(/Approved team-payments\/orders-enriched/)).toBeTruthy());
    const post = calls.find((c) => c.method === 'POST')!;
    expect(post.body).toEqual({ comment: 'ok for platform', generation: 2 });
  });

  it('asks for a comment before rejecting, and shows a refusal', async () => {
    stubFetch({
      'GET /api/v1/approvals': () => json({ items: [product] }),
      'GET /api/v1/datasets': () => json({ items: datasets }),
      'POST /api/v1/products/team-payments/orders-enriched/reject': () => problem(409, 'generation 3 is pending now', undefined, 'conflict'),
    });
    const user = userEvent.setup();
    renderInbox();
    const reject = await screen.findByRole('button', { name: 'Reject team-payments/orders-enriched' });
    await user.click(reject);
    expect(screen.getByText('Say why: a rejection needs a comment.')).toBeTruthy();
    expect(screen.getByLabelText('Comment on team-payments/orders-enriched').getAttribute('aria-invalid')).toBe('true');
    await user.type(screen.getByLabelText('Comment on team-payments/orders-enriched'), 'no PII please');
    await user.click(reject);
    expect((await screen.findByRole('alert')).textContent).toContain('generation 3 is pending now');
  });
});

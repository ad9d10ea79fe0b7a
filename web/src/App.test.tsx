import { afterEach, describe, expect, it, vi } from 'vitest';
import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { MemoryRouter } from 'react-router';
import { AppRoutes } from './App';
import { SessionProvider } from './auth/session';
import { datasets } from './test/fixtures';
import { json, problem, stubFetch } from './test/fetch';

const me = { name: 'alice@example.com', team: 'team-payments', role: 'requester', via: 'token' };

function renderApp(path = '/catalog') {
  return render(
    <SessionProvider>
      <MemoryRouter initialEntries={[path]}>
        <AppRoutes />
      </MemoryRouter>
    </SessionProvider>,
  );
}

afterEach(() => {
  vi.unstubAllGlobals();
  localStorage.clear();
});

describe('sign-in', () => {
  it('checks the token with /me, keeps it in sessionStorage only, and shows who is signed in', async () => {
    const calls = stubFetch({
      'GET /api/v1/auth/config': () => json({ oidc: null }),
      'GET /api/v1/me': (c) => (c.headers.authorization === 'Bearer slc_good' ? json(me) : problem(401, 'the token is unknown, expired or revoked', undefined, 'unauthenticated')),
      'GET /api/v1/datasets': () => json({ items: datasets }),
    });
    const user = userEvent.setup();
    renderApp('/catalog');
    await screen.findByRole('heading', { name: 'Sign in to Sluice' });

    await user.type(screen.getByLabelText('API token'), 'slc_bad');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByRole('alert')).textContent).toContain('the token is unknown, expired or revoked');

    await user.clear(screen.getByLabelText('API token'));
    await user.type(screen.getByLabelText('API token'), 'slc_good');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    await screen.findByRole('heading', { name: 'Catalog', level: 1 });
    const banner = screen.getByRole('banner');
    expect(within(banner).getByText('alice@example.com')).toBeTruthy();
    expect(within(banner).getByText('requester')).toBeTruthy();
    expect(within(banner).getByText('team-payments')).toBeTruthy();
    // A requester sees no approvals inbox and no audit log.
    const nav = screen.getByRole('navigation', { name: 'Main' });
    expect(within(nav).queryByRole('link', { name: 'Approvals' })).toBeNull();
    expect(within(nav).queryByRole('link', { name: 'Audit log' })).toBeNull();
    expect(within(nav).getByRole('link', { name: 'Request a product' })).toBeTruthy();
    expect(sessionStorage.getItem('sluice.token')).toBe('slc_good');
    expect(Object.values({ ...localStorage }).join()).not.toContain('slc_good');
    expect(calls.find((c) => c.url.startsWith('/api/v1/datasets'))!.headers.authorization).toBe('Bearer slc_good');

    // Search the catalog.
    await user.type(screen.getByLabelText('Search datasets'), 'field:customer_id');
    expect(screen.getByRole('link', { name: 'shop.orders' })).toBeTruthy();
    expect(screen.queryByRole('link', { name: 'pay.payments' })).toBeNull();

    await user.click(within(banner).getByRole('button', { name: 'Sign out' }));
    await screen.findByRole('heading', { name: 'Sign in to Sluice' });
    expect(sessionStorage.getItem('sluice.token')).toBeNull();
  });

  it('signs out with a notice when the API refuses the session', async () => {
    sessionStorage.setItem('sluice.token', 'slc_old');
    stubFetch({
      'GET /api/v1/auth/config': () => json({ oidc: null }),
      'GET /api/v1/me': () => problem(401, 'the token is unknown, expired or revoked', undefined, 'unauthenticated'),
    });
    renderApp('/products');
    expect((await screen.findByRole('alert')).textContent).toMatch(/no longer valid/);
  });

  it('works with a server without /me (roles unknown: everything shown, the API decides)', async () => {
    stubFetch({
      'GET /api/v1/datasets': () => json({ items: datasets }),
    });
    const user = userEvent.setup();
    renderApp('/catalog');
    await user.type(await screen.findByLabelText('API token'), 'slc_any');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    await screen.findByRole('heading', { name: 'Catalog', level: 1 });
    expect(screen.getByText('signed in (role unknown)')).toBeTruthy();
    expect(within(screen.getByRole('navigation', { name: 'Main' })).getByRole('link', { name: 'Audit log' })).toBeTruthy();
  });

  it('offers single sign-on when the server configures it', async () => {
    stubFetch({
      'GET /api/v1/auth/config': () =>
        json({ oidc: { issuer: 'https://idp.example.com/realms/acme', audience: 'sluice', authorizationEndpoint: 'https://idp.example.com/auth', tokenEndpoint: 'https://idp.example.com/token', clientId: 'sluice' } }),
    });
    renderApp('/catalog');
    await waitFor(() => expect(screen.getByRole('button', { name: 'Sign in with single sign-on' })).toBeTruthy());
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { beginOidcSignIn, completeOidcSignIn } from './oidc';
import { challengeS256 } from './pkce';
import { json, stubFetch } from '../test/fetch';

const config = {
  issuer: 'https://idp.example.com/realms/acme',
  audience: 'sluice-console',
  authorizationEndpoint: 'https://idp.example.com/auth',
  tokenEndpoint: 'https://idp.example.com/token',
  clientId: 'sluice-console',
};

afterEach(() => vi.unstubAllGlobals());

describe('OIDC authorization code flow with PKCE', () => {
  it('redirects with an S256 challenge and exchanges the code with the verifier', async () => {
    const url = new URL(await beginOidcSignIn(config, '/approvals'));
    expect(url.origin + url.pathname).toBe('https://idp.example.com/auth');
    expect(url.searchParams.get('response_type')).toBe('code');
    expect(url.searchParams.get('client_id')).toBe('sluice-console');
    expect(url.searchParams.get('redirect_uri')).toBe(`${window.location.origin}/auth/callback`);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('scope')).toContain('openid');
    const pending = JSON.parse(sessionStorage.getItem('sluice.oidc.pending')!);
    expect(url.searchParams.get('code_challenge')).toBe(await challengeS256(pending.verifier));
    const state = url.searchParams.get('state')!;

    let body: URLSearchParams | null = null;
    vi.stubGlobal(
      'fetch',
      vi.fn(async (_u: string, init: RequestInit) => {
        body = new URLSearchParams(init.body as URLSearchParams);
        return json({ id_token: 'h.p.s', access_token: 'at', token_type: 'Bearer' });
      }),
    );
    const done = await completeOidcSignIn(`?code=abc&state=${state}`);
    expect(done).toEqual({ token: 'h.p.s', returnTo: '/approvals' });
    expect(body!.get('grant_type')).toBe('authorization_code');
    expect(body!.get('code')).toBe('abc');
    expect(body!.get('code_verifier')).toBe(pending.verifier);
    expect(sessionStorage.getItem('sluice.oidc.pending')).toBeNull();
  });

  it('refuses a callback whose state does not match', async () => {
    await beginOidcSignIn(config);
    stubFetch({});
    await expect(completeOidcSignIn('?code=abc&state=forged')).rejects.toThrow(/state does not match/);
  });

  it('reports the provider refusing the sign-in', async () => {
    await expect(completeOidcSignIn('?error=access_denied&error_description=not%20allowed')).rejects.toThrow(/not allowed/);
  });
});

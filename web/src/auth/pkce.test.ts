// @vitest-environment node
import { describe, expect, it } from 'vitest';
import { base64url, challengeS256, createVerifier } from './pkce';
import { jwtExpiry, pickBearer } from './oidc';

describe('PKCE', () => {
  it('computes the S256 challenge of the RFC 7636 example verifier', async () => {
    // RFC 7636, Appendix B.
    expect(await challengeS256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });

  it('makes 43-character verifiers of the unreserved alphabet, each different', () => {
    const a = createVerifier();
    const b = createVerifier();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
  });

  it('encodes base64url without padding', () => {
    expect(base64url(new Uint8Array([0xfb, 0xff]))).toBe('-_8');
  });
});

describe('OIDC helpers', () => {
  const config = { issuer: 'https://idp', audience: 'sluice-console', authorizationEndpoint: 'https://idp/auth', tokenEndpoint: 'https://idp/token', clientId: 'sluice-console' };
  it('sends the ID token when the audience is the client, else the access token', () => {
    expect(pickBearer({ id_token: 'id', access_token: 'at' }, config)).toBe('id');
    expect(pickBearer({ id_token: 'id', access_token: 'at' }, { ...config, audience: 'sluice-api' })).toBe('at');
  });
  it('reads the expiry of a JWT and none of an API token', () => {
    const payload = btoa(JSON.stringify({ exp: 2000000000 })).replace(/=+$/, '');
    expect(jwtExpiry(`h.${payload}.s`)).toBe(2000000000 * 1000);
    expect(jwtExpiry('slc_abc')).toBeNull();
  });
});

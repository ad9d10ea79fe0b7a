// Sign-in with the organisation's OpenID Connect provider: authorization code + PKCE (S256).
// The verifier and state live in sessionStorage until the provider redirects back to
// /auth/callback; the resulting ID token (or access token) is the API bearer token.
import type { UsableOidc } from '../api/types';
import { challengeS256, createVerifier, randomString } from './pkce';

const PENDING_KEY = 'sluice.oidc.pending';

interface Pending {
  state: string;
  verifier: string;
  nonce: string;
  redirectUri: string;
  returnTo: string;
  config: UsableOidc;
}

export function callbackUri(): string {
  return `${window.location.origin}/auth/callback`;
}

/** Builds the authorization URL and remembers what the callback needs. */
export async function beginOidcSignIn(config: UsableOidc, returnTo = '/'): Promise<string> {
  const verifier = createVerifier();
  const state = randomString(16);
  const nonce = randomString(16);
  const redirectUri = callbackUri();
  const pending: Pending = { state, verifier, nonce, redirectUri, returnTo, config };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(config.authorizationEndpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', config.clientId);
  url.searchParams.set('redirect_uri', redirectUri);
  url.searchParams.set('scope', 'openid profile email');
  url.searchParams.set('state', state);
  url.searchParams.set('nonce', nonce);
  url.searchParams.set('code_challenge', await challengeS256(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  if (config.audience && config.audience !== config.clientId) {
    // Providers that issue API access tokens per audience (Auth0, Okta) take it here.
    url.searchParams.set('audience', config.audience);
  }
  return url.toString();
}

export interface TokenResponse {
  id_token?: string;
  access_token?: string;
  token_type?: string;
  expires_in?: number;
  error?: string;
  error_description?: string;
}

/** Which token the API should get: the one whose audience is Sluice's. */
export function pickBearer(tokens: TokenResponse, config: UsableOidc): string | null {
  if (config.audience === config.clientId) return tokens.id_token ?? tokens.access_token ?? null;
  return tokens.access_token ?? tokens.id_token ?? null;
}

/** Completes the sign-in on /auth/callback: checks state, exchanges the code. */
export async function completeOidcSignIn(search: string): Promise<{ token: string; returnTo: string }> {
  const params = new URLSearchParams(search);
  const raw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  const error = params.get('error');
  if (error) {
    throw new Error(`the identity provider refused the sign-in: ${params.get('error_description') ?? error}`);
  }
  if (!raw) throw new Error('no sign-in is in progress in this tab (start again from the sign-in page)');
  const pending = JSON.parse(raw) as Pending;
  const code = params.get('code');
  if (!code) throw new Error('the identity provider sent no authorization code');
  if (params.get('state') !== pending.state) throw new Error('the sign-in state does not match (start again)');
  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: pending.redirectUri,
    client_id: pending.config.clientId,
    code_verifier: pending.verifier,
  });
  let res: Response;
  try {
    res = await fetch(pending.config.tokenEndpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body,
    });
  } catch (e) {
    throw new Error(`cannot reach the identity provider's token endpoint: ${e instanceof Error ? e.message : e}`);
  }
  let tokens: TokenResponse = {};
  try {
    tokens = (await res.json()) as TokenResponse;
  } catch {
    // handled below
  }
  if (!res.ok || tokens.error) {
    throw new Error(`the token exchange failed: ${tokens.error_description ?? tokens.error ?? `HTTP ${res.status}`}`);
  }
  const token = pickBearer(tokens, pending.config);
  if (!token) throw new Error('the identity provider returned no token');
  return { token, returnTo: pending.returnTo || '/' };
}

/** The `exp` of a JWT in milliseconds, or null for an opaque token. */
export function jwtExpiry(token: string): number | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(json) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

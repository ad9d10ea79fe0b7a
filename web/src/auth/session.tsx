// The signed-in session: the bearer token (sessionStorage only: it goes with the tab) and
// who it proves (GET /api/v1/me). A 401 from any call signs out with a notice.
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState } from 'react';
import type { ReactNode } from 'react';
import { api, isMissingEndpoint, onUnauthorized, setApiToken } from '../api/client';
import { getAuthConfig, getMe } from '../api/endpoints';
import { ApiError, isApiError } from '../api/problem';
import type { AuthConfig, Me } from '../api/types';
import { jwtExpiry } from './oidc';

export const TOKEN_KEY = 'sluice.token';

export type SessionStatus = 'loading' | 'signedOut' | 'signedIn';

export interface SessionValue {
  status: SessionStatus;
  token: string | null;
  /** Who the token proves; null when the server has no /me (then roles are unknown). */
  me: Me | null;
  authConfig: AuthConfig | null;
  /** Why the last session ended, for the sign-in page. */
  notice: string | null;
  signIn: (token: string) => Promise<void>;
  signOut: (notice?: string) => void;
}

const SessionContext = createContext<SessionValue | null>(null);

/** Validates a token: /me, or on a server without /me any authenticated read. */
export async function whoIs(token: string): Promise<Me | null> {
  try {
    return await getMe(token);
  } catch (e) {
    if (isMissingEndpoint(e)) {
      await api.get('/datasets?limit=1', { token, quiet401: true });
      return null;
    }
    throw e;
  }
}

export function SessionProvider({ children, initialToken }: { children: ReactNode; initialToken?: string | null }) {
  const [status, setStatus] = useState<SessionStatus>('loading');
  const [token, setToken] = useState<string | null>(null);
  const [me, setMe] = useState<Me | null>(null);
  const [authConfig, setAuthConfig] = useState<AuthConfig | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const expiryTimer = useRef<number | undefined>(undefined);

  const signOut = useCallback((why?: string) => {
    sessionStorage.removeItem(TOKEN_KEY);
    setApiToken(null);
    setToken(null);
    setMe(null);
    setNotice(why ?? null);
    setStatus('signedOut');
    window.clearTimeout(expiryTimer.current);
  }, []);

  const adopt = useCallback(
    (tok: string, who: Me | null) => {
      sessionStorage.setItem(TOKEN_KEY, tok);
      setApiToken(tok);
      setToken(tok);
      setMe(who);
      setNotice(null);
      setStatus('signedIn');
      window.clearTimeout(expiryTimer.current);
      const exp = jwtExpiry(tok);
      if (exp !== null) {
        const ms = Math.max(0, exp - Date.now());
        // setTimeout caps at ~24.8 days; tokens live far shorter.
        expiryTimer.current = window.setTimeout(
          () => signOut('Your sign-in expired. Sign in again.'),
          Math.min(ms, 2_000_000_000),
        );
      }
    },
    [signOut],
  );

  const signIn = useCallback(
    async (tok: string) => {
      const trimmed = tok.trim();
      if (!trimmed) throw new ApiError({ title: 'Enter a token', status: 0, detail: 'the token is empty' });
      const who = await whoIs(trimmed);
      adopt(trimmed, who);
    },
    [adopt],
  );

  useEffect(() => {
    onUnauthorized((e) => signOut(`The API refused the session: ${e.problem.detail ?? e.problem.title}. Sign in again.`));
    return () => onUnauthorized(null);
  }, [signOut]);

  useEffect(() => {
    const ctrl = new AbortController();
    getAuthConfig(ctrl.signal)
      .then(setAuthConfig)
      .catch(() => setAuthConfig({ oidc: null }));
    const stored = initialToken !== undefined ? initialToken : sessionStorage.getItem(TOKEN_KEY);
    if (!stored) {
      setStatus('signedOut');
    } else {
      whoIs(stored)
        .then((who) => adopt(stored, who))
        .catch((e: unknown) =>
          signOut(
            isApiError(e) && e.status === 401
              ? 'Your session is no longer valid. Sign in again.'
              : `Could not check the session: ${e instanceof Error ? e.message : String(e)}`,
          ),
        );
    }
    return () => ctrl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const value = useMemo<SessionValue>(
    () => ({ status, token, me, authConfig, notice, signIn, signOut }),
    [status, token, me, authConfig, notice, signIn, signOut],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionValue {
  const v = useContext(SessionContext);
  if (!v) throw new Error('useSession outside SessionProvider');
  return v;
}

/** A session for tests and stories. */
export function StaticSession({ me, children }: { me: Me | null; children: ReactNode }) {
  const value = useMemo<SessionValue>(
    () => ({
      status: 'signedIn',
      token: 'test',
      me,
      authConfig: { oidc: null },
      notice: null,
      signIn: async () => {},
      signOut: () => {},
    }),
    [me],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

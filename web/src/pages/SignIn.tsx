import { useState } from 'react';
import type { FormEvent } from 'react';
import { Navigate, useLocation, useNavigate } from 'react-router';
import { beginOidcSignIn } from '../auth/oidc';
import { useSession } from '../auth/session';
import { Loading, ProblemAlert, usePageTitle } from '../components/common';
import { usableOidc } from '../api/types';

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

export function SignIn() {
  usePageTitle('Sign in');
  const { status, signIn, authConfig, notice } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const from = (location.state as { from?: string } | null)?.from ?? '/catalog';
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  if (status === 'signedIn') return <Navigate to={from} replace />;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(token);
      navigate(from, { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const oidc = usableOidc(authConfig?.oidc);
  const sso = async () => {
    if (!oidc) return;
    setError(null);
    try {
      window.location.assign(await beginOidcSignIn(oidc, from));
    } catch (err) {
      setError(err);
    }
  };

  return (
    <main id="main" className="signin-page">
      <div className="signin-card">
        <h1>Sign in to Sluice</h1>
        {status === 'loading' ? <Loading label="Checking your session…" /> : null}
        {notice ? (
          <p className="alert alert-warning" role="alert">
            {notice}
          </p>
        ) : null}
        {oidc ? (
          <>
            <button type="button" className="btn btn-primary btn-block" onClick={sso}>
              Sign in with single sign-on
            </button>
            <p className="hint">Through {hostOf(oidc.issuer)}.</p>
            <p className="divider">
              <span>or with an API token</span>
            </p>
          </>
        ) : null}
        {authConfig?.oidc && !oidc ? (
          <p className="hint" role="note">
            This server accepts tokens of {hostOf(authConfig.oidc.issuer)}, but single sign-on from the console is not set up (the
            operator sets the authorization and token endpoints and the client id).
          </p>
        ) : null}
        <form onSubmit={submit} noValidate>
          <div className="field">
            <label htmlFor="token">API token</label>
            <input
              id="token"
              name="token"
              type="password"
              autoComplete="off"
              spellCheck={false}
              value={token}
              required
              aria-describedby="token-hint"
              aria-invalid={error ? true : undefined}
              onChange={(e) => setToken(e.target.value)}
            />
            <p className="hint" id="token-hint">
              A token from <code>sluice token create</code> (it starts with <code>slc_</code>). It is kept in this tab only and
              forgotten when the tab closes.
            </p>
          </div>
          <ProblemAlert error={error} title="Sign-in failed" />
          <button type="submit" className="btn btn-primary btn-block" disabled={busy || !token.trim()}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
      </div>
    </main>
  );
}

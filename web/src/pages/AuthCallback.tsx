import { useEffect, useRef, useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { completeOidcSignIn } from '../auth/oidc';
import { useSession } from '../auth/session';
import { Loading, ProblemAlert, usePageTitle } from '../components/common';

/** /auth/callback: the identity provider sends the person back here with a code. */
export function AuthCallback() {
  usePageTitle('Signing in');
  const { signIn } = useSession();
  const navigate = useNavigate();
  const [error, setError] = useState<unknown>(null);
  const started = useRef(false);

  useEffect(() => {
    if (started.current) return; // the code may be used once (StrictMode runs effects twice)
    started.current = true;
    completeOidcSignIn(window.location.search)
      .then(async ({ token, returnTo }) => {
        await signIn(token);
        navigate(returnTo.startsWith('/') && !returnTo.startsWith('//') ? returnTo : '/', { replace: true });
      })
      .catch(setError);
  }, [signIn, navigate]);

  return (
    <main id="main" className="signin-page">
      <div className="signin-card">
        <h1>Signing in</h1>
        {error ? (
          <>
            <ProblemAlert error={error} title="Single sign-on failed" />
            <p>
              <Link to="/signin">Back to sign-in</Link>
            </p>
          </>
        ) : (
          <Loading label="Completing the sign-in…" />
        )}
      </div>
    </main>
  );
}

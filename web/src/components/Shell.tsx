// The page frame: skip link, banner with navigation and the signed-in person, main landmark.
import { NavLink, Outlet, useLocation } from 'react-router';
import { useEffect, useRef } from 'react';
import { can } from '../auth/roles';
import { useSession } from '../auth/session';
import { useTheme } from '../lib/theme';
import type { ThemeChoice } from '../lib/theme';

export function Shell() {
  const { me, signOut } = useSession();
  const [theme, setTheme] = useTheme();
  const location = useLocation();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);

  // Move focus to the page on client-side navigation, as a full page load would.
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.focus({ preventScroll: false });
  }, [location.pathname]);

  const links: { to: string; label: string; show: boolean }[] = [
    { to: '/catalog', label: 'Catalog', show: true },
    { to: '/products', label: 'Products', show: true },
    { to: '/request', label: 'Request a product', show: can.requestProducts(me) },
    { to: '/approvals', label: 'Approvals', show: can.approve(me) },
    { to: '/audit', label: 'Audit log', show: can.readAudit(me) },
  ];

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to="/catalog" className="brand" aria-label="Sluice home">
          <svg width="22" height="22" viewBox="0 0 32 32" aria-hidden="true">
            <rect width="32" height="32" rx="6" fill="currentColor" />
            <path d="M6 11h20M6 16h14M6 21h20" stroke="var(--bg)" strokeWidth="3" strokeLinecap="round" />
          </svg>
          <span>Sluice</span>
        </NavLink>
        <nav aria-label="Main">
          <ul>
            {links
              .filter((l) => l.show)
              .map((l) => (
                <li key={l.to}>
                  <NavLink to={l.to}>{l.label}</NavLink>
                </li>
              ))}
          </ul>
        </nav>
        <div className="userbox">
          <label htmlFor="theme-select" className="sr-only">
            Colour theme
          </label>
          <select id="theme-select" className="theme-select" value={theme} onChange={(e) => setTheme(e.target.value as ThemeChoice)}>
            <option value="system">System</option>
            <option value="light">Light</option>
            <option value="dark">Dark</option>
          </select>
          <div className="who" aria-label="Signed in as">
            {me ? (
              <>
                <span className="who-name" data-testid="user-name">
                  {me.name}
                </span>
                <span className="who-meta">
                  <span data-testid="user-role">{me.role}</span>
                  {me.team ? (
                    <>
                      {' · '}
                      <span data-testid="user-team">{me.team}</span>
                    </>
                  ) : null}
                </span>
              </>
            ) : (
              <span className="who-meta">signed in (role unknown)</span>
            )}
          </div>
          <button type="button" className="btn btn-small btn-secondary" onClick={() => signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}

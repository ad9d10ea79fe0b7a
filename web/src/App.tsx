import { BrowserRouter, Navigate, Route, Routes, useLocation } from 'react-router';
import { lazy, Suspense } from 'react';
import type { ReactNode } from 'react';
import { SessionProvider, useSession } from './auth/session';
import { Loading } from './components/common';
import { Shell } from './components/Shell';
import { Approvals } from './pages/Approvals';
import { Audit } from './pages/Audit';
import { AuthCallback } from './pages/AuthCallback';
import { Catalog } from './pages/Catalog';
import { DatasetPage } from './pages/DatasetPage';
import { NotFound } from './pages/NotFound';
import { ProductPage } from './pages/ProductPage';
import { Products } from './pages/Products';
import { SignIn } from './pages/SignIn';

// The request editor carries CodeMirror: loaded when first needed.
const RequestProduct = lazy(() => import('./pages/RequestProduct').then((m) => ({ default: m.RequestProduct })));

function Editor() {
  return (
    <Suspense fallback={<Loading label="Loading the editor…" />}>
      <RequestProduct />
    </Suspense>
  );
}

function RequireSession({ children }: { children: ReactNode }) {
  const { status } = useSession();
  const location = useLocation();
  if (status === 'loading')
    return (
      <main id="main" className="signin-page">
        <Loading label="Checking your session…" />
      </main>
    );
  if (status === 'signedOut') return <Navigate to="/signin" replace state={{ from: location.pathname + location.search }} />;
  return <>{children}</>;
}

export function AppRoutes() {
  return (
    <Routes>
      <Route path="/signin" element={<SignIn />} />
      <Route path="/auth/callback" element={<AuthCallback />} />
      <Route
        element={
          <RequireSession>
            <Shell />
          </RequireSession>
        }
      >
        <Route index element={<Navigate to="/catalog" replace />} />
        <Route path="catalog" element={<Catalog />} />
        <Route path="catalog/:name" element={<DatasetPage />} />
        <Route path="products" element={<Products />} />
        <Route path="products/:team/:name" element={<ProductPage />} />
        <Route path="products/:team/:name/edit" element={<Editor />} />
        <Route path="request" element={<Editor />} />
        <Route path="approvals" element={<Approvals />} />
        <Route path="audit" element={<Audit />} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}

export function App() {
  return (
    <SessionProvider>
      <BrowserRouter>
        <AppRoutes />
      </BrowserRouter>
    </SessionProvider>
  );
}

import { Link, useSearchParams } from 'react-router';
import { listProducts } from '../api/endpoints';
import { PHASES } from '../api/types';
import { can } from '../auth/roles';
import { useSession } from '../auth/session';
import { Empty, Loading, PhaseBadge, ProblemAlert, usePageTitle } from '../components/common';
import { phaseLabel } from '../lib/format';
import { useAsync } from '../lib/useAsync';

export function Products() {
  usePageTitle('Products');
  const { me } = useSession();
  const [params, setParams] = useSearchParams();
  const team = params.get('team') ?? '';
  const phase = params.get('phase') ?? '';
  const prefix = params.get('namePrefix') ?? '';
  const products = useAsync((signal) => listProducts({ team, phase, namePrefix: prefix }, signal), [team, phase, prefix]);
  const set = (k: string, v: string) => {
    const next = new URLSearchParams(params);
    if (v) next.set(k, v);
    else next.delete(k);
    setParams(next, { replace: true });
  };

  return (
    <>
      <div className="page-head with-actions">
        <div>
          <h1>Products</h1>
          <p className="lede">Data products requested by the teams, and where they are in their lifecycle.</p>
        </div>
        {can.requestProducts(me) ? (
          <Link className="btn btn-primary" to="/request">
            Request a product
          </Link>
        ) : null}
      </div>
      <form className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter products">
        <div className="field">
          <label htmlFor="pf-team">Team</label>
          <input id="pf-team" type="text" value={team} onChange={(e) => set('team', e.target.value.trim())} placeholder="any" />
        </div>
        <div className="field">
          <label htmlFor="pf-phase">Phase</label>
          <select id="pf-phase" value={phase} onChange={(e) => set('phase', e.target.value)}>
            <option value="">any</option>
            {PHASES.map((p) => (
              <option key={p} value={p}>
                {phaseLabel(p)}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="pf-prefix">Name starts with</label>
          <input id="pf-prefix" type="text" value={prefix} onChange={(e) => set('namePrefix', e.target.value.trim())} />
        </div>
        {me?.team ? (
          <button type="button" className="btn btn-secondary" onClick={() => set('team', me.team ?? '')}>
            My team's products
          </button>
        ) : null}
      </form>
      {products.loading ? <Loading label="Loading products…" /> : null}
      <ProblemAlert error={products.error} title="Could not load the products" />
      {products.data ? (
        products.data.length === 0 ? (
          <Empty>No products{team || phase || prefix ? ' match the filters' : ' yet'}.</Empty>
        ) : (
          <div className="table-wrap" tabIndex={0}>
            <table className="data-table">
              <caption className="sr-only">Products</caption>
              <thead>
                <tr>
                  <th scope="col">Product</th>
                  <th scope="col">Phase</th>
                  <th scope="col">Target</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {products.data.map((p) => (
                  <tr key={`${p.metadata.team}/${p.metadata.name}`}>
                    <th scope="row">
                      <Link to={`/products/${encodeURIComponent(p.metadata.team ?? '')}/${encodeURIComponent(p.metadata.name)}`}>
                        {p.metadata.team}/{p.metadata.name}
                      </Link>
                      {p.metadata.description ? <div className="small muted">{p.metadata.description}</div> : null}
                    </th>
                    <td>
                      <PhaseBadge phase={p.status?.phase} />
                    </td>
                    <td>
                      {p.spec.target.cluster ?? p.spec.target.dedicated?.type ?? '—'} / <code>{p.spec.target.name}</code>
                    </td>
                    <td className="small">{p.status?.message ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )
      ) : null}
    </>
  );
}

import { Link, useSearchParams } from 'react-router';
import { listDatasets } from '../api/endpoints';
import { ClassificationBadge, Empty, Loading, PiiMark, ProblemAlert, usePageTitle } from '../components/common';
import { searchDatasets } from '../lib/search';
import { datasetFields } from '../lib/spec';
import { useAsync } from '../lib/useAsync';

export function Catalog() {
  usePageTitle('Catalog');
  const [params, setParams] = useSearchParams();
  const q = params.get('q') ?? '';
  const datasets = useAsync((signal) => listDatasets(signal), []);
  const hits = datasets.data ? searchDatasets(datasets.data, q) : [];

  return (
    <>
      <div className="page-head">
        <h1>Catalog</h1>
        <p className="lede">The event streams published to Sluice, their schemas and owners.</p>
      </div>
      <div className="searchbar">
        <form role="search" onSubmit={(e) => e.preventDefault()}>
          <label htmlFor="catalog-search">Search datasets</label>
          <input
            id="catalog-search"
            type="search"
            value={q}
            placeholder="name, tag, owner or field, e.g. orders or field:customer_id"
            aria-describedby="catalog-search-hint"
            onChange={(e) => setParams(e.target.value ? { q: e.target.value } : {}, { replace: true })}
          />
          <p id="catalog-search-hint" className="hint">
            Words match names, tags, owners, field names and descriptions. Narrow with <code>tag:</code>, <code>owner:</code>,{' '}
            <code>field:</code>, <code>class:</code> or <code>kind:</code>.
          </p>
        </form>
      </div>
      {datasets.loading ? <Loading label="Loading the catalog…" /> : null}
      <ProblemAlert error={datasets.error} title="Could not load the catalog" />
      {datasets.data ? (
        <>
          <p role="status" aria-live="polite" className="muted">
            {hits.length} of {datasets.data.length} dataset{datasets.data.length === 1 ? '' : 's'}
            {q ? ` match “${q}”` : ''}
          </p>
          {hits.length === 0 ? (
            <Empty>No dataset matches. Try fewer words.</Empty>
          ) : (
            <div className="table-wrap" tabIndex={0}>
              <table className="data-table">
                <caption className="sr-only">Datasets</caption>
                <thead>
                  <tr>
                    <th scope="col">Dataset</th>
                    <th scope="col">Owner</th>
                    <th scope="col">Classification</th>
                    <th scope="col">Kind</th>
                    <th scope="col">Tags</th>
                    <th scope="col">Fields</th>
                  </tr>
                </thead>
                <tbody>
                  {hits.map(({ dataset: d, fields }) => {
                    const all = datasetFields(d);
                    return (
                      <tr key={d.metadata.name}>
                        <th scope="row">
                          <Link to={`/catalog/${encodeURIComponent(d.metadata.name)}`}>{d.metadata.name}</Link>
                          {d.metadata.description ? <div className="small muted">{d.metadata.description}</div> : null}
                        </th>
                        <td>{d.metadata.owner ?? '—'}</td>
                        <td>
                          <ClassificationBadge value={d.spec.classification ?? undefined} />
                        </td>
                        <td>{d.spec.kind}</td>
                        <td>
                          {(d.metadata.tags ?? []).map((t) => (
                            <span key={t} className="tag">
                              {t}
                            </span>
                          ))}
                        </td>
                        <td>
                          {all.length} {all.some((f) => f.pii) ? <PiiMark /> : null}
                          {fields.length ? (
                            <div className="small">
                              matches{' '}
                              {fields.map((f) => (
                                <code key={f}>{f} </code>
                              ))}
                            </div>
                          ) : null}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
        </>
      ) : null}
    </>
  );
}

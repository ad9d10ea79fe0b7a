import { useMemo } from 'react';
import { Link, useNavigate, useParams, useSearchParams } from 'react-router';
import { getProduct, getSchema, listClusters, listDatasets, listSchemas } from '../api/endpoints';
import { isApiError } from '../api/problem';
import type { DataProduct, ProductDoc } from '../api/types';
import { can } from '../auth/roles';
import { useSession } from '../auth/session';
import { Loading, ProblemAlert, usePageTitle } from '../components/common';
import { ProductEditor } from '../components/ProductEditor';
import { editableDoc, emptyProduct, suggestAlias } from '../lib/spec';
import { useAsync } from '../lib/useAsync';
import type { Schema } from '../lib/yamlCompletion';

async function loadProductSchema(signal: AbortSignal): Promise<Schema | null> {
  try {
    const list = await listSchemas(signal);
    const entry = list.find((s) => s.kind === 'DataProduct');
    const file = entry?.url.split('/').pop() ?? 'dataproduct.schema.json';
    return (await getSchema(file, signal)) as Schema;
  } catch {
    return null; // completion then offers catalog values only
  }
}

/** /request (a new product) and /products/:team/:name/edit (a change). */
export function RequestProduct() {
  const { team: editTeam, name: editName } = useParams();
  const editing = !!(editTeam && editName);
  usePageTitle(editing ? `Change ${editTeam}/${editName}` : 'Request a product');
  const { me } = useSession();
  const [params] = useSearchParams();
  const navigate = useNavigate();

  const catalog = useAsync(
    async (signal) => {
      const [datasets, clusters, schema] = await Promise.all([listDatasets(signal), listClusters(signal), loadProductSchema(signal)]);
      return { datasets, clusters, schema };
    },
    [],
  );
  const existing = useAsync<DataProduct | null>(
    (signal) => (editing ? getProduct(editTeam!, editName!, signal) : Promise.resolve(null)),
    [editTeam, editName],
  );

  const initial: ProductDoc | null = useMemo(() => {
    if (editing) return existing.data ? editableDoc(existing.data) : null;
    const doc = emptyProduct(params.get('team') ?? me?.team ?? '');
    const source = params.get('dataset');
    if (source && doc.spec) {
      const alias = suggestAlias(source, []);
      doc.spec.sources = [{ name: alias, dataset: source }];
      const key = catalog.data?.datasets.find((d) => d.metadata.name === source)?.spec.key;
      if (key) doc.spec.key = `${alias}.${key}`;
    }
    return doc;
  }, [editing, existing.data, me, params, catalog.data]);

  const allowed = editing ? can.writeProduct(me, editTeam!) : can.requestProducts(me);

  return (
    <>
      <div className="page-head">
        {editing ? (
          <nav aria-label="Breadcrumb" className="breadcrumb">
            <Link to="/products">Products</Link> / <Link to={`/products/${editTeam}/${editName}`}>{`${editTeam}/${editName}`}</Link> /{' '}
            <span aria-current="page">Change</span>
          </nav>
        ) : null}
        <h1>{editing ? `Change ${editTeam}/${editName}` : 'Request a data product'}</h1>
        <p className="lede">
          {editing
            ? 'A change that takes more data needs approval again; the approved version keeps running meanwhile.'
            : 'Choose sources from the catalog, shape the rows and pick a target. The plan is checked as you type.'}
        </p>
      </div>
      {!allowed ? (
        <p className="alert alert-warning" role="note">
          Your role ({me?.role}) cannot submit requests{editing ? ` for ${editTeam}` : ''}; you can still build one and see its plan.
        </p>
      ) : null}
      {catalog.loading || existing.loading ? <Loading label="Loading the catalog…" /> : null}
      <ProblemAlert error={catalog.error} title="Could not load the catalog" />
      <ProblemAlert error={existing.error} title={isApiError(existing.error) && existing.error.status === 404 ? 'No such product' : 'Could not load the product'} />
      {catalog.data && initial ? (
        <ProductEditor
          key={editing ? `${editTeam}/${editName}/${existing.data?.metadata.resourceVersion}` : 'new'}
          initial={initial}
          datasets={catalog.data.datasets}
          clusters={catalog.data.clusters}
          schema={catalog.data.schema}
          teamLocked={editing || !can.anyTeam(me)}
          nameLocked={editing}
          existing={editing}
          resourceVersion={existing.data?.metadata.resourceVersion ?? undefined}
          initialTab={params.get('view') === 'yaml' ? 'yaml' : 'form'}
          onSubmitted={(p) =>
            navigate(`/products/${encodeURIComponent(p.metadata.team ?? '')}/${encodeURIComponent(p.metadata.name)}`, {
              state: { flash: editing ? `Changes submitted. ${p.status?.message ?? ''}` : `Request submitted. ${p.status?.message ?? ''}` },
            })
          }
        />
      ) : null}
    </>
  );
}

// Typed wrappers of the endpoints the console uses (docs/api.md, /api/v1/openapi.json).
import { api, enc, isMissingEndpoint } from './client';
import type {
  AuditEntry,
  AuditVerification,
  AuthConfig,
  Credentials,
  DataProduct,
  DataProductStatus,
  Dataset,
  LineageItem,
  ListPage,
  Me,
  Plan,
  ProductDoc,
  Samples,
  SchemaVersionDoc,
  TargetCluster,
} from './types';

const product = (team: string, name: string) => `/products/${enc(team)}/${enc(name)}`;

/** Every page of a list endpoint (bounded, to keep a huge catalog from hanging the page). */
async function listAll<T>(path: string, query: Record<string, string> = {}, signal?: AbortSignal, maxPages = 20): Promise<T[]> {
  const items: T[] = [];
  let cont: string | undefined;
  for (let page = 0; page < maxPages; page++) {
    const params = new URLSearchParams({ limit: '1000', ...query });
    if (cont) params.set('continue', cont);
    const res = await api.get<ListPage<T>>(`${path}?${params}`, { signal });
    items.push(...(res.items ?? []));
    cont = res.continue;
    if (!cont) break;
  }
  return items;
}

export async function getAuthConfig(signal?: AbortSignal): Promise<AuthConfig> {
  try {
    return await api.get<AuthConfig>('/auth/config', { signal, token: null, quiet401: true });
  } catch (e) {
    if (isMissingEndpoint(e)) return { oidc: null };
    throw e;
  }
}

export const getMe = (token?: string, signal?: AbortSignal) =>
  api.get<Me>('/me', { token, signal, quiet401: token !== undefined });

export const listDatasets = (signal?: AbortSignal) => listAll<Dataset>('/datasets', {}, signal);
export const getDataset = (name: string, signal?: AbortSignal) =>
  api.get<Dataset>(`/datasets/${enc(name)}`, { signal });
export const listSchemaVersions = (name: string, signal?: AbortSignal) =>
  api.get<SchemaVersionDoc[]>(`/datasets/${enc(name)}/schemas`, { signal });
export const getSamples = (name: string, limit: number, signal?: AbortSignal) =>
  api.get<Samples>(`/datasets/${enc(name)}/samples?limit=${limit}`, { signal });
export const getDatasetProducts = (name: string, signal?: AbortSignal) =>
  api.get<{ items: LineageItem[] }>(`/datasets/${enc(name)}/products`, { signal });

export const listClusters = (signal?: AbortSignal) => listAll<TargetCluster>('/targetclusters', {}, signal);

export const listProducts = (query: { team?: string; phase?: string; namePrefix?: string } = {}, signal?: AbortSignal) => {
  const q: Record<string, string> = {};
  for (const [k, v] of Object.entries(query)) if (v) q[k] = v;
  return listAll<DataProduct>('/products', q, signal);
};
export const getProduct = (team: string, name: string, signal?: AbortSignal) =>
  api.get<DataProduct>(product(team, name), { signal });
export const getProductStatus = (team: string, name: string, signal?: AbortSignal) =>
  api.get<DataProductStatus>(`${product(team, name)}/status`, { signal });
export const getStoredPlan = (team: string, name: string, signal?: AbortSignal) =>
  api.get<Plan>(`${product(team, name)}/plan`, { signal });
export const postPlan = (team: string, name: string, doc: ProductDoc, signal?: AbortSignal) =>
  api.post<Plan>(`${product(team, name)}/plan`, doc, { signal });
export const putProduct = (team: string, name: string, doc: ProductDoc, ifMatch?: string) =>
  api.put<DataProduct>(product(team, name), doc, ifMatch ? { headers: { 'If-Match': `"${ifMatch}"` } } : undefined);
export const deleteProduct = (team: string, name: string) => api.del<unknown>(product(team, name));
export const verifyProduct = (team: string, name: string) =>
  api.post<unknown>(`${product(team, name)}/verify`);
export const approveProduct = (team: string, name: string, body: { comment?: string; generation?: number }) =>
  api.post<DataProduct>(`${product(team, name)}/approve`, body);
export const rejectProduct = (team: string, name: string, body: { comment: string; generation?: number }) =>
  api.post<DataProduct>(`${product(team, name)}/reject`, body);
export const getCredentials = (team: string, name: string, signal?: AbortSignal) =>
  api.get<Credentials>(`${product(team, name)}/credentials`, { signal });
export const productEventsPath = (team: string, name: string) => `${product(team, name)}/events`;
export const productStatusPath = (team: string, name: string) => `${product(team, name)}/status`;

export const listApprovals = (signal?: AbortSignal) => listAll<DataProduct>('/approvals', {}, signal);

export interface AuditQuery {
  kind?: string;
  team?: string;
  name?: string;
  actor?: string;
  since?: string;
  until?: string;
  after?: number;
  limit?: number;
}

export const listAudit = (query: AuditQuery, signal?: AbortSignal) => {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
  return api.get<AuditEntry[]>(`/audit?${params}`, { signal });
};
export const verifyAudit = () => api.post<AuditVerification>('/audit/verify');

export const listSchemas = (signal?: AbortSignal) =>
  api.get<{ kind: string; url: string; id: string }[]>('/schemas', { signal });
export const getSchema = (kind: string, signal?: AbortSignal) =>
  api.get<Record<string, unknown>>(`/schemas/${enc(kind)}`, { signal });

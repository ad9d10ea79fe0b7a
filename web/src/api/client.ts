// The one way the console talks to the API: same origin, `Authorization: Bearer <token>`,
// JSON in and out, problem+json errors as ApiError.
import { ApiError, problemFromResponse } from './problem';

export const API_BASE = '/api/v1';

let currentToken: string | null = null;
let unauthorizedHandler: ((e: ApiError) => void) | null = null;

export function setApiToken(token: string | null): void {
  currentToken = token;
}

export function getApiToken(): string | null {
  return currentToken;
}

/** Called when the API refuses the token (401): the session signs out. */
export function onUnauthorized(handler: ((e: ApiError) => void) | null): void {
  unauthorizedHandler = handler;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  /** Raw body text with its content type (e.g. YAML). */
  rawBody?: { text: string; contentType: string };
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Use this token instead of the session's (sign-in checks a token before keeping it). */
  token?: string | null;
  /** Do not sign out on 401 (used while signing in). */
  quiet401?: boolean;
}

export function apiUrl(path: string, query?: Record<string, string | number | undefined | null>): string {
  let url = path.startsWith('/api/') ? path : API_BASE + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
    }
    const qs = params.toString();
    if (qs) url += (url.includes('?') ? '&' : '?') + qs;
  }
  return url;
}

export function authHeaders(token: string | null = currentToken): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** Performs a request and returns the raw Response when it is OK; throws ApiError otherwise. */
export async function apiFetch(path: string, opts: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = {
    Accept: 'application/json',
    ...authHeaders(opts.token === undefined ? currentToken : opts.token),
    ...opts.headers,
  };
  let body: BodyInit | undefined;
  if (opts.rawBody) {
    headers['Content-Type'] = opts.rawBody.contentType;
    body = opts.rawBody.text;
  } else if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let res: Response;
  try {
    res = await fetch(path.startsWith('/api/') ? path : API_BASE + path, { method: opts.method ?? 'GET', headers, body, signal: opts.signal });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError({
      title: 'Cannot reach the Sluice API',
      status: 0,
      detail: e instanceof Error ? e.message : String(e),
    });
  }
  if (!res.ok) {
    const err = new ApiError(await problemFromResponse(res));
    if (res.status === 401 && !opts.quiet401 && unauthorizedHandler) unauthorizedHandler(err);
    throw err;
  }
  return res;
}

/** A JSON request: the parsed body of a 2xx answer (undefined for 204). */
export async function apiJson<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await apiFetch(path, opts);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const api = {
  get: <T>(path: string, opts?: RequestOptions) => apiJson<T>(path, opts),
  post: <T>(path: string, body?: unknown, opts?: RequestOptions) =>
    apiJson<T>(path, { ...opts, method: 'POST', body: body ?? {} }),
  put: <T>(path: string, body: unknown, opts?: RequestOptions) =>
    apiJson<T>(path, { ...opts, method: 'PUT', body }),
  del: <T>(path: string, opts?: RequestOptions) => apiJson<T>(path, { ...opts, method: 'DELETE' }),
};

export const enc = encodeURIComponent;

/**
 * True when the error says the endpoint does not exist on this server (an older build):
 * the API answers an unknown path with 404 "no such endpoint" (a missing *resource* is a
 * 404 with another detail).
 */
export function isMissingEndpoint(e: unknown): boolean {
  if (!(e instanceof ApiError)) return false;
  if (e.status === 405 || e.status === 501) return true;
  return e.status === 404 && /no such endpoint/i.test(e.problem.detail ?? '');
}

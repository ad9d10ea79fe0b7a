// A fetch stub for tests: routes by method and path (query string ignored unless given).
import { vi } from 'vitest';

export interface Call {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

type Handler = (call: Call) => Response | Promise<Response>;

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

export function problem(status: number, detail: string, errors?: { pointer: string; detail: string }[], code = 'validation_failed'): Response {
  return new Response(JSON.stringify({ type: `https://sluice.dev/problems/${code}`, title: 'Validation failed', status, detail, code, errors }), {
    status,
    headers: { 'content-type': 'application/problem+json' },
  });
}

export function stubFetch(routes: Record<string, Handler>): Call[] {
  const calls: Call[] = [];
  vi.stubGlobal(
    'fetch',
    vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.toString() : input.url;
      const method = (init.method ?? 'GET').toUpperCase();
      const headers = Object.fromEntries(Object.entries((init.headers as Record<string, string>) ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
      let body: unknown = init.body;
      if (typeof body === 'string' && headers['content-type']?.includes('json')) body = JSON.parse(body);
      const call = { method, url, headers, body };
      calls.push(call);
      const path = url.split('?')[0];
      const handler = routes[`${method} ${url}`] ?? routes[`${method} ${path}`];
      if (!handler) return problem(404, 'no such endpoint', undefined, 'not_found');
      return handler(call);
    }),
  );
  return calls;
}

// RFC 9457 problem details as the Sluice API sends them (docs/errors.md):
// {type, title, status, detail, code, errors: [{pointer: "#/spec/...", detail}]}.

export interface FieldError {
  /** JSON pointer as a URI fragment, e.g. `#/spec/sources/1/dataset`. */
  pointer: string;
  detail: string;
}

export interface Problem {
  type?: string;
  title: string;
  status: number;
  detail?: string;
  code?: string;
  errors?: FieldError[];
  [key: string]: unknown;
}

/** An error answer of the API (or a failure to reach it: status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
    this.name = 'ApiError';
    this.status = problem.status;
    this.problem = problem;
  }

  get code(): string | undefined {
    return this.problem.code;
  }

  get fieldErrors(): FieldError[] {
    return this.problem.errors ?? [];
  }
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof ApiError;
}

/** Turns any thrown value into a Problem for display. */
export function toProblem(e: unknown): Problem {
  if (e instanceof ApiError) return e.problem;
  if (e instanceof Error) return { title: 'Error', status: 0, detail: e.message };
  return { title: 'Error', status: 0, detail: String(e) };
}

/** Normalises a pointer to the plain JSON pointer form (`/spec/x`), decoding `~1`/`~0`. */
export function pointerSegments(pointer: string): string[] {
  let p = pointer.startsWith('#') ? pointer.slice(1) : pointer;
  try {
    p = decodeURIComponent(p);
  } catch {
    // keep it as it is
  }
  if (p === '' || p === '/') return [];
  return p
    .replace(/^\//, '')
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Builds a `#/a/b` pointer from segments. */
export function pointerOf(...segments: (string | number)[]): string {
  return (
    '#/' +
    segments.map((s) => String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')
  );
}

/** The field errors whose pointer is `pointer` exactly. */
export function errorsAt(errors: FieldError[] | undefined, pointer: string): FieldError[] {
  if (!errors) return [];
  const want = pointerSegments(pointer).join('/');
  return errors.filter((e) => pointerSegments(e.pointer).join('/') === want);
}

/** Parses an error response body into a Problem, whatever the server sent. */
export async function problemFromResponse(res: Response): Promise<Problem> {
  const type = res.headers.get('content-type') ?? '';
  let body: unknown = undefined;
  try {
    const text = await res.text();
    if (text && (type.includes('json') || text.trim().startsWith('{'))) body = JSON.parse(text);
    else if (text) body = text;
  } catch {
    body = undefined;
  }
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    return {
      ...b,
      title: typeof b.title === 'string' ? b.title : res.statusText || `HTTP ${res.status}`,
      status: typeof b.status === 'number' ? b.status : res.status,
      detail: typeof b.detail === 'string' ? b.detail : undefined,
      errors: Array.isArray(b.errors) ? (b.errors as FieldError[]) : undefined,
    };
  }
  return {
    title: res.statusText || `HTTP ${res.status}`,
    status: res.status,
    detail: typeof body === 'string' && body.length < 500 ? body : undefined,
  };
}

// Server-sent events over fetch (EventSource cannot send an Authorization header):
// an incremental parser of the text/event-stream format (WHATWG HTML §9.2) that takes
// chunks split anywhere, and a subscription with reconnect + backoff + polling fallback.
import { apiFetch, apiJson } from '../api/client';
import { ApiError } from '../api/problem';

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private eventType = '';
  private lastId: string | undefined;
  /** `retry:` the server asked for, in ms. */
  retry: number | undefined;

  /** Feeds a chunk of text; returns the events it completed. */
  feed(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const out: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      if (c === '\r' && i === this.buffer.length - 1) break; // may be the first half of \r\n
      const line = this.buffer.slice(start, i);
      if (c === '\r' && this.buffer[i + 1] === '\n') i++;
      start = i + 1;
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  /** Ends the stream: an unterminated event is dropped, as the spec says. */
  end(): void {
    this.buffer = '';
    this.data = [];
    this.eventType = '';
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      if (this.data.length === 0) {
        this.eventType = '';
        return null;
      }
      const ev: SseEvent = { event: this.eventType || 'message', data: this.data.join('\n') };
      if (this.lastId !== undefined) ev.id = this.lastId;
      this.data = [];
      this.eventType = '';
      return ev;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
    return null;
  }
}

export type LiveMode = 'connecting' | 'stream' | 'polling' | 'ended';

export interface LiveHandlers<T> {
  onStatus: (status: T) => void;
  onDeleted?: () => void;
  onMode?: (mode: LiveMode) => void;
  onError?: (e: unknown) => void;
}

export interface LiveOptions {
  /** Polling period once the stream is given up. */
  pollMs?: number;
  /** Stream failures in a row before falling back to polling. */
  maxStreamFailures?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * Follows `eventsPath` (an SSE stream of `event: status` / `event: deleted`); reconnects with
 * exponential backoff; after repeated failures, or at once when the server has no such
 * endpoint, polls `statusPath`. Returns the function that stops it.
 */
export function followStatus<T>(
  eventsPath: string,
  statusPath: string,
  handlers: LiveHandlers<T>,
  opts: LiveOptions = {},
): () => void {
  const pollMs = opts.pollMs ?? 2000;
  const maxFailures = opts.maxStreamFailures ?? 4;
  const base = opts.baseBackoffMs ?? 1000;
  const maxBackoff = opts.maxBackoffMs ?? 30000;
  const ctrl = new AbortController();
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;

  const setMode = (m: LiveMode) => handlers.onMode?.(m);
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    });

  const poll = async () => {
    setMode('polling');
    while (!stopped) {
      try {
        handlers.onStatus(await apiJson<T>(statusPath, { signal: ctrl.signal }));
      } catch (e) {
        if (stopped) return;
        if (e instanceof ApiError && e.status === 404) {
          handlers.onDeleted?.();
          setMode('ended');
          return;
        }
        handlers.onError?.(e);
      }
      await sleep(pollMs);
    }
  };

  const stream = async () => {
    while (!stopped) {
      setMode('connecting');
      let gotEvent = false;
      try {
        const res = await apiFetch(eventsPath, {
          headers: { Accept: 'text/event-stream' },
          signal: ctrl.signal,
        });
        const type = res.headers.get('content-type') ?? '';
        if (!res.body || !type.includes('text/event-stream')) {
          throw new Error(`the events endpoint answered ${type || 'no body'}`);
        }
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        const parser = new SseParser();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          for (const ev of parser.feed(decoder.decode(value, { stream: true }))) {
            if (ev.event === 'status') {
              if (!gotEvent) setMode('stream');
              gotEvent = true;
              failures = 0;
              try {
                handlers.onStatus(JSON.parse(ev.data) as T);
              } catch (e) {
                handlers.onError?.(e);
              }
            } else if (ev.event === 'deleted') {
              handlers.onDeleted?.();
              setMode('ended');
              stopped = true;
              ctrl.abort();
              return;
            }
          }
        }
        parser.end();
        // The server closed the stream: reconnect.
      } catch (e) {
        if (stopped) return;
        if (e instanceof ApiError && [404, 405, 501, 503].includes(e.status)) {
          // Older server without the stream, or it is unavailable: poll instead.
          void poll();
          return;
        }
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
          handlers.onError?.(e);
          setMode('ended');
          return;
        }
      }
      if (stopped) return;
      failures = gotEvent ? 1 : failures + 1;
      if (failures >= maxFailures) {
        void poll();
        return;
      }
      await sleep(Math.min(maxBackoff, base * 2 ** (failures - 1)));
    }
  };

  void stream();
  return () => {
    stopped = true;
    clearTimeout(timer);
    ctrl.abort();
  };
}

import { afterEach, describe, expect, it, vi } from 'vitest';
import { followStatus, SseParser } from './sse';
import { json, stubFetch } from '../test/fetch';

describe('SseParser', () => {
  it('parses events whose lines are split across chunks anywhere', () => {
    const text = 'event: status\ndata: {"phase":"Backfilling"}\n\n: keep-alive\n\nevent: status\ndata: {"phase":"Live"}\n\nevent: deleted\ndata: {}\n\n';
    // Every possible split point, and one character at a time.
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser();
      const events = [...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut))];
      expect(events).toEqual([
        { event: 'status', data: '{"phase":"Backfilling"}' },
        { event: 'status', data: '{"phase":"Live"}' },
        { event: 'deleted', data: '{}' },
      ]);
    }
    const p = new SseParser();
    const oneByOne = [...text].flatMap((c) => p.feed(c));
    expect(oneByOne.map((e) => e.event)).toEqual(['status', 'status', 'deleted']);
  });

  it('handles CRLF split between chunks, CR line ends, multi-line data, ids and retry', () => {
    const p = new SseParser();
    const events = [
      ...p.feed('id: 7\r'),
      ...p.feed('\nretry: 1500\r\nevent: status\r\ndata: line one\r\ndata:line two\r'),
      ...p.feed('\r'),
      ...p.feed('data: plain\n\n'),
    ];
    expect(events).toEqual([
      { event: 'status', data: 'line one\nline two', id: '7' },
      { event: 'message', data: 'plain', id: '7' },
    ]);
    expect(p.retry).toBe(1500);
  });

  it('ignores events without data and comments, and drops an unterminated event at the end', () => {
    const p = new SseParser();
    expect(p.feed(': hello\n\nevent: status\n\ndata: x')).toEqual([]);
    p.end();
    expect(p.feed('\n\n')).toEqual([]);
  });
});

function streamResponse(chunks: string[]): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(enc.encode(c));
      controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
}

describe('followStatus', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it('reads status events from the stream, with the bearer token, until deleted', async () => {
    const calls = stubFetch({
      'GET /api/v1/products/t/p/events': () =>
        streamResponse(['event: status\ndata: {"phase":"Back', 'filling"}\n\nevent: sta', 'tus\ndata: {"phase":"Live"}\n\n', 'event: deleted\ndata: {}\n\n']),
    });
    const { setApiToken } = await import('../api/client');
    setApiToken('slc_test');
    const statuses: unknown[] = [];
    const modes: string[] = [];
    await new Promise<void>((resolve) => {
      followStatus('/products/t/p/events', '/products/t/p/status', {
        onStatus: (s) => statuses.push(s),
        onMode: (m) => modes.push(m),
        onDeleted: () => resolve(),
      });
    });
    expect(statuses).toEqual([{ phase: 'Backfilling' }, { phase: 'Live' }]);
    expect(modes).toContain('stream');
    expect(calls[0].headers.authorization).toBe('Bearer slc_test');
    expect(calls[0].headers.accept).toBe('text/event-stream');
    setApiToken(null);
  });

  it('falls back to polling the status when the server has no event stream', async () => {
    stubFetch({
      'GET /api/v1/products/t/p/status': () => json({ phase: 'Live' }),
    });
    const got = await new Promise<{ status: unknown; modes: string[] }>((resolve) => {
      const modes: string[] = [];
      const stop = followStatus('/products/t/p/events', '/products/t/p/status', {
        onStatus: (s) => {
          stop();
          resolve({ status: s, modes });
        },
        onMode: (m) => modes.push(m),
      });
    });
    expect(got.status).toEqual({ phase: 'Live' });
    expect(got.modes).toContain('polling');
  });

  it('reconnects with backoff when the stream breaks, then polls after repeated failures', async () => {
    let attempts = 0;
    stubFetch({
      'GET /api/v1/products/t/p/events': () => {
        attempts++;
        throw new TypeError('network down');
      },
      'GET /api/v1/products/t/p/status': () => json({ phase: 'Degraded' }),
    });
    const got = await new Promise<unknown>((resolve) => {
      const stop = followStatus(
        '/products/t/p/events',
        '/products/t/p/status',
        {
          onStatus: (s) => {
            stop();
            resolve(s);
          },
        },
        { baseBackoffMs: 1, maxStreamFailures: 3 },
      );
    });
    expect(attempts).toBe(3);
    expect(got).toEqual({ phase: 'Degraded' });
  });
});

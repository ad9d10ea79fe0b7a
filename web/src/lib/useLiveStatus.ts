// A product's status as it changes: the server-sent event stream when the server has it,
// else polling; plus the last five minutes of samples for the small charts.
import { useEffect, useRef, useState } from 'react';
import { productEventsPath, productStatusPath } from '../api/endpoints';
import type { DataProductStatus } from '../api/types';
import { followStatus } from './sse';
import type { LiveMode } from './sse';

export interface StatusSample {
  t: number;
  lagMs: number | null;
  deadLetters: number | null;
  /** Backfill events read so far, over all sources. */
  done: number;
  /** Sum of the per-source rates the job reports. */
  rate: number | null;
}

export const WINDOW_MS = 5 * 60_000;

export function sampleOf(status: DataProductStatus, t: number): StatusSample {
  const bf = status.backfill ?? [];
  const rates = bf.map((b) => b.rate).filter((r): r is number => typeof r === 'number');
  return {
    t,
    lagMs: status.lagMs ?? null,
    deadLetters: status.deadLetters ?? null,
    done: bf.reduce((n, b) => n + (b.done ?? 0), 0),
    rate: rates.length ? rates.reduce((a, b) => a + b, 0) : null,
  };
}

/** Events per second between consecutive samples (the job's own rate while nothing moved). */
export function throughput(samples: StatusSample[]): { t: number; v: number }[] {
  const out: { t: number; v: number }[] = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1];
    const b = samples[i];
    const dt = (b.t - a.t) / 1000;
    if (dt <= 0) continue;
    const d = b.done - a.done;
    out.push({ t: b.t, v: d > 0 ? d / dt : 0 });
  }
  return out;
}

export function useLiveStatus(team: string, name: string, initial: DataProductStatus | null | undefined) {
  const [status, setStatus] = useState<DataProductStatus | null>(initial ?? null);
  const [mode, setMode] = useState<LiveMode>('connecting');
  const [deleted, setDeleted] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [samples, setSamples] = useState<StatusSample[]>(() => (initial ? [sampleOf(initial, Date.now())] : []));
  const last = useRef(0);

  useEffect(() => {
    setDeleted(false);
    const stop = followStatus<DataProductStatus>(productEventsPath(team, name), productStatusPath(team, name), {
      onStatus: (s) => {
        setStatus(s);
        setError(null);
        const now = Date.now();
        // At most one sample a second, whatever the stream's pace: a change within the
        // second replaces the sample taken at its start.
        const replace = now - last.current < 1000;
        if (!replace) last.current = now;
        setSamples((prev) => {
          const kept = prev.filter((p) => p.t >= now - WINDOW_MS);
          if (replace && kept.length) kept[kept.length - 1] = { ...sampleOf(s, kept[kept.length - 1].t) };
          else kept.push(sampleOf(s, now));
          return kept;
        });
      },
      onDeleted: () => setDeleted(true),
      onMode: setMode,
      onError: setError,
    });
    return stop;
  }, [team, name]);

  // Keep the charts moving while the stream is quiet (a status is only sent on change).
  useEffect(() => {
    if (!status) return;
    const timer = setInterval(() => {
      const now = Date.now();
      if (now - last.current < 4000) return;
      last.current = now;
      setSamples((prev) => [...prev.filter((p) => p.t >= now - WINDOW_MS), sampleOf(status, now)]);
    }, 5000);
    return () => clearInterval(timer);
  }, [status]);

  return { status, mode, deleted, error, samples };
}

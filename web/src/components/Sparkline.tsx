// A small inline SVG line chart of recent samples (no chart library).

export interface Point {
  t: number;
  v: number;
}

interface Props {
  points: Point[];
  label: string;
  format: (v: number) => string;
  width?: number;
  height?: number;
  /** The window shown, in ms (points older than now - windowMs are off the left edge). */
  windowMs?: number;
  now?: number;
}

export function Sparkline({ points, label, format, width = 240, height = 48, windowMs = 5 * 60_000, now }: Props) {
  const end = now ?? (points.length ? points[points.length - 1].t : Date.now());
  const start = end - windowMs;
  const shown = points.filter((p) => p.t >= start);
  const values = shown.map((p) => p.v);
  const max = values.length ? Math.max(...values) : 0;
  const min = 0;
  const span = max - min || 1;
  const pad = 3;
  const x = (t: number) => pad + ((t - start) / windowMs) * (width - 2 * pad);
  const y = (v: number) => height - pad - ((v - min) / span) * (height - 2 * pad);
  const path = shown.map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  const area = shown.length > 1 ? `${path} L${x(shown[shown.length - 1].t).toFixed(1)},${height - pad} L${x(shown[0].t).toFixed(1)},${height - pad} Z` : '';
  const latest = shown.length ? shown[shown.length - 1].v : null;
  const summary = latest === null ? `${label}: no samples yet` : `${label}: now ${format(latest)}, highest ${format(max)} over the last ${Math.round(windowMs / 60000)} minutes`;
  return (
    <figure className="sparkline">
      <figcaption>
        <span className="spark-label">{label}</span>
        <span className="spark-value">{latest === null ? '—' : format(latest)}</span>
      </figcaption>
      <svg width="100%" height={height} viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" role="img" aria-label={summary}>
        <title>{summary}</title>
        <line x1={pad} x2={width - pad} y1={height - pad} y2={height - pad} className="spark-axis" />
        {area ? <path d={area} className="spark-area" /> : null}
        {path ? <path d={path} className="spark-line" fill="none" /> : null}
        {shown.length === 1 ? <circle cx={x(shown[0].t)} cy={y(shown[0].v)} r={2.5} className="spark-dot" /> : null}
      </svg>
    </figure>
  );
}

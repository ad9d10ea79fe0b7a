import { stringify } from 'yaml';
import { lineDiff } from '../lib/lineDiff';

/** The YAML of two specs, line by line: removed lines marked −, added lines +. */
export function SpecDiff({ before, after, label }: { before: unknown; after: unknown; label: string }) {
  const lines = lineDiff(stringify(before ?? {}, { lineWidth: 0 }), stringify(after ?? {}, { lineWidth: 0 }));
  const changed = lines.filter((l) => l.kind !== 'same').length;
  return (
    <div>
      <p className="small muted">
        {changed === 0 ? 'No differences.' : `${lines.filter((l) => l.kind === 'add').length} line(s) added, ${lines.filter((l) => l.kind === 'del').length} removed.`}
      </p>
      <pre className="code-block diff" tabIndex={0} aria-label={label}>
        {lines.map((l, i) => (
          <span key={i} className={`diff-${l.kind}`}>
            <span aria-hidden="true">{l.kind === 'add' ? '+ ' : l.kind === 'del' ? '− ' : '  '}</span>
            {l.kind === 'add' ? <span className="sr-only">added: </span> : l.kind === 'del' ? <span className="sr-only">removed: </span> : null}
            {l.text}
            {'\n'}
          </span>
        ))}
      </pre>
    </div>
  );
}

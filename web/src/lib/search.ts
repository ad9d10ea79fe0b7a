// Catalog search: free words match a dataset's name, tags, owner, field names or
// description; `tag:`, `owner:`, `field:`, `class:` and `kind:` narrow to one attribute.
import type { Dataset } from '../api/types';
import { datasetFields } from './spec';

export interface SearchHit {
  dataset: Dataset;
  /** Field names that matched, to show why the dataset is listed. */
  fields: string[];
  score: number;
}

interface Term {
  attr: 'any' | 'tag' | 'owner' | 'field' | 'class' | 'kind' | 'name';
  value: string;
}

export function parseQuery(q: string): Term[] {
  return q
    .trim()
    .toLowerCase()
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => {
      const m = /^(tag|owner|field|class|classification|kind|name):(.*)$/.exec(w);
      if (!m) return { attr: 'any', value: w } as Term;
      const attr = (m[1] === 'classification' ? 'class' : m[1]) as Term['attr'];
      return { attr, value: m[2] };
    })
    .filter((t) => t.value !== '');
}

export function searchDatasets(datasets: Dataset[], q: string): SearchHit[] {
  const terms = parseQuery(q);
  const hits: SearchHit[] = [];
  for (const d of datasets) {
    const name = d.metadata.name.toLowerCase();
    const tags = (d.metadata.tags ?? []).map((t) => t.toLowerCase());
    const owner = (d.metadata.owner ?? '').toLowerCase();
    const desc = (d.metadata.description ?? '').toLowerCase();
    const fields = datasetFields(d);
    const cls = (d.spec.classification ?? '').toLowerCase();
    const kind = (d.spec.kind ?? '').toLowerCase();
    let score = 0;
    const matchedFields = new Set<string>();
    let ok = true;
    for (const t of terms) {
      const fieldMatches = fields.filter((f) => f.name.toLowerCase().includes(t.value) || (f.description ?? '').toLowerCase().includes(t.value));
      let s = 0;
      switch (t.attr) {
        case 'tag':
          s = tags.some((x) => x.includes(t.value)) ? 3 : 0;
          break;
        case 'owner':
          s = owner.includes(t.value) ? 3 : 0;
          break;
        case 'class':
          s = cls === t.value ? 3 : 0;
          break;
        case 'kind':
          s = kind === t.value ? 3 : 0;
          break;
        case 'name':
          s = name.includes(t.value) ? 3 : 0;
          break;
        case 'field':
          s = fieldMatches.length ? 3 : 0;
          fieldMatches.forEach((f) => matchedFields.add(f.name));
          break;
        case 'any':
          if (name === t.value) s = 10;
          else if (name.includes(t.value)) s = 5;
          else if (tags.some((x) => x.includes(t.value))) s = 4;
          else if (owner.includes(t.value)) s = 3;
          else if (fieldMatches.length) {
            s = 2;
            fieldMatches.forEach((f) => matchedFields.add(f.name));
          } else if (desc.includes(t.value)) s = 1;
          break;
      }
      if (!s) {
        ok = false;
        break;
      }
      score += s;
    }
    if (ok) hits.push({ dataset: d, fields: [...matchedFields], score });
  }
  return hits.sort((a, b) => b.score - a.score || a.dataset.metadata.name.localeCompare(b.dataset.metadata.name));
}

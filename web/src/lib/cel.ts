// A quick local check of CEL expressions while typing: balanced brackets, closed strings and
// source aliases that exist. The API's dry-run plan is the real validation (it compiles the
// expression against the source schemas); this only answers faster for the obvious slips.

const BUILTINS = new Set([
  'true', 'false', 'null', 'in', 'int', 'uint', 'double', 'string', 'bool', 'bytes', 'size', 'has',
  'timestamp', 'duration', 'matches', 'contains', 'startsWith', 'endsWith', 'exists', 'all',
  'exists_one', 'map', 'filter', 'type', 'dyn', 'lowerAscii', 'upperAscii', 'math', 'strings',
]);

export function checkCel(expr: string, aliases: string[]): string | null {
  const stack: string[] = [];
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  let i = 0;
  let outside = '';
  while (i < expr.length) {
    const c = expr[i];
    if (c === '"' || c === "'") {
      const q = c;
      let j = i + 1;
      let closed = false;
      while (j < expr.length) {
        if (expr[j] === '\\') {
          j += 2;
          continue;
        }
        if (expr[j] === q) {
          closed = true;
          break;
        }
        j++;
      }
      if (!closed) return `the string starting at character ${i + 1} is not closed`;
      outside += ' ';
      i = j + 1;
      continue;
    }
    if (c === '(' || c === '[' || c === '{') stack.push(c);
    if (c === ')' || c === ']' || c === '}') {
      if (stack.pop() !== pairs[c]) return `unbalanced \`${c}\` at character ${i + 1}`;
    }
    outside += c;
    i++;
  }
  if (stack.length) return `\`${stack[stack.length - 1]}\` is not closed`;
  if (/(&&|\|\||==|!=|>=|<=|[+\-*/%<>])\s*$/.test(expr.trim())) return 'the expression ends with an operator';
  // Identifiers followed by a dot that are not aliases (ignoring member calls like `x.size()`).
  const re = /(^|[^\w.])([A-Za-z_]\w*)\s*\./g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(outside))) {
    const id = m[2];
    if (!aliases.includes(id) && !BUILTINS.has(id)) {
      return `\`${id}\` is not a source alias (the sources are ${aliases.map((a) => `\`${a}\``).join(', ') || 'not chosen yet'})`;
    }
  }
  return null;
}

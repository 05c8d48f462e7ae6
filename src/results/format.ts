/**
 * Number and value formatting shared by the terminal table and the HTML report, so both show
 * a run's numbers the same way.
 */
export function formatValue(v: unknown, digits = 4): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return String(v);
    if (!Number.isFinite(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
    return v.toFixed(digits);
  }
  if (typeof v === 'string') {
    // numeric strings from a CSV read back
    if (/^-?\d+\.\d+(e[-+]?\d+)?$/i.test(v)) return formatValue(Number(v), digits);
    return v;
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return JSON.stringify(v);
}

/** A plain-text table (no colours): header, rule, rows; numbers right-aligned. */
export function formatTable(columns: readonly string[], rows: readonly Record<string, unknown>[], maxRows = 40): string {
  const shown = rows.slice(0, maxRows);
  const cells = shown.map((r) => columns.map((c) => formatValue(r[c])));
  const numeric = columns.map((c) => shown.length > 0 && shown.every((r) => r[c] === null || r[c] === undefined || r[c] === '' || typeof r[c] === 'number' || /^-?[\d.]+(e[-+]?\d+)?$/i.test(String(r[c]))));
  const widths = columns.map((c, j) => Math.max(c.length, ...cells.map((r) => r[j].length)));
  const pad = (s: string, j: number) => (numeric[j] ? s.padStart(widths[j]) : s.padEnd(widths[j]));
  const lines = [columns.map((c, j) => pad(c, j)).join('  ').trimEnd(), widths.map((w) => '─'.repeat(w)).join('  ')];
  for (const r of cells) lines.push(r.map((s, j) => pad(s, j)).join('  ').trimEnd());
  if (rows.length > shown.length) lines.push(`… ${rows.length - shown.length} more rows in results.csv`);
  return lines.join('\n');
}

/** Scalar entries of a summary object, flattened with dotted keys (for a key/value table). */
export function flattenScalars(obj: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}, depth = 0): Record<string, unknown> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && depth < 3) flattenScalars(v as Record<string, unknown>, key, out, depth + 1);
    else if (v === null || typeof v !== 'object') out[key] = v;
    else if (Array.isArray(v) && v.length <= 8 && v.every((x) => x === null || typeof x !== 'object')) out[key] = v.map((x) => formatValue(x)).join(', ');
  }
  return out;
}

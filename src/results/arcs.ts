import type { Figure } from './figures.js';

/**
 * Dependency-arc trees drawn the way Hewitt & Manning (2019, fig. 2) show them: the sentence on
 * one line, the gold tree's arcs above it and the predicted tree's arcs below it. Hand-written
 * SVG because no chart grammar draws arcs between words. Edges are [dependent, head] pairs of
 * 0-based word indices; the structural probe's trees are undirected, so an edge counts as
 * matching gold in either direction. Predicted edges that match a gold edge are drawn solid
 * blue, the others dashed orange.
 */
export interface DependencyArcsOptions {
  words: readonly string[];
  gold: readonly (readonly [number, number])[];
  predicted: readonly (readonly [number, number])[];
  title?: string;
}

const FONT_SIZE = 13;
/** Average advance of a 13px sans-serif glyph; the SVG sets textLength so text never overflows. */
const CHAR_W = 7.4;
const GAP = 14;
const PAD = 12;

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function validEdges(edges: readonly (readonly [number, number])[], n: number): [number, number][] {
  const seen = new Set<string>();
  const out: [number, number][] = [];
  for (const [a, b] of edges) {
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < 0 || a >= n || b >= n || a === b) continue;
    const key = a < b ? `${a}-${b}` : `${b}-${a}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push([a, b]);
  }
  return out;
}

const undirectedKey = ([a, b]: readonly [number, number]) => (a < b ? `${a}-${b}` : `${b}-${a}`);

export function dependencyArcs(o: DependencyArcsOptions): Figure {
  const n = o.words.length;
  const gold = validEdges(o.gold, n);
  const predicted = validEdges(o.predicted, n);
  const goldKeys = new Set(gold.map(undirectedKey));
  const matched = predicted.filter((e) => goldKeys.has(undirectedKey(e))).length;

  // word centres along the line
  const widths = o.words.map((w) => Math.max(10, w.length * CHAR_W));
  const centres: number[] = [];
  let x = PAD;
  for (const w of widths) {
    centres.push(x + w / 2);
    x += w + GAP;
  }
  const width = Math.max(x - GAP + PAD, 220);
  const unit = 11; // arc height per word of span
  const maxSpan = (edges: [number, number][]) => Math.max(1, ...edges.map(([a, b]) => Math.abs(a - b)));
  const heightFor = (span: number) => 10 + unit * Math.sqrt(span) * 2.2;
  const upH = heightFor(maxSpan(gold));
  const downH = heightFor(maxSpan(predicted));
  const titleH = o.title ? 22 : 0;
  const legendH = 20;
  const baseline = titleH + PAD + upH + FONT_SIZE; // text baseline
  const goldY = baseline - FONT_SIZE - 3;
  const predY = baseline + 6;
  const height = predY + downH + PAD + legendH;

  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="dependency-arcs" width="${Math.ceil(width)}" height="${Math.ceil(height)}" viewBox="0 0 ${Math.ceil(width)} ${Math.ceil(height)}" font-family="Helvetica, Arial, sans-serif">`,
  );
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  if (o.title) parts.push(`<text x="${PAD}" y="${PAD + 10}" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>`);
  const arc = (a: number, b: number, y: number, up: boolean) => {
    const [x1, x2] = [centres[Math.min(a, b)], centres[Math.max(a, b)]];
    const h = heightFor(Math.abs(a - b)) * (up ? -1 : 1);
    // a cubic curve whose peak reaches 3/4 of h
    return `M${x1.toFixed(1)},${y.toFixed(1)} C${x1.toFixed(1)},${(y + h).toFixed(1)} ${x2.toFixed(1)},${(y + h).toFixed(1)} ${x2.toFixed(1)},${y.toFixed(1)}`;
  };
  parts.push(`<g class="gold" fill="none" stroke="#222" stroke-width="1.5">`);
  for (const [a, b] of gold) parts.push(`<path d="${arc(a, b, goldY, true)}"><title>gold: ${escapeXml(o.words[a])} – ${escapeXml(o.words[b])}</title></path>`);
  parts.push(`</g>`);
  parts.push(`<g class="predicted" fill="none" stroke-width="1.5">`);
  for (const [a, b] of predicted) {
    const ok = goldKeys.has(undirectedKey([a, b]));
    parts.push(
      `<path d="${arc(a, b, predY, false)}" stroke="${ok ? '#1f77b4' : '#ff7f0e'}"${ok ? '' : ' stroke-dasharray="4 3"'}><title>predicted${ok ? '' : ' (not in gold)'}: ${escapeXml(o.words[a])} – ${escapeXml(o.words[b])}</title></path>`,
    );
  }
  parts.push(`</g>`);
  parts.push(`<g class="words" font-size="${FONT_SIZE}" text-anchor="middle">`);
  o.words.forEach((w, i) => {
    const tl = w.length * CHAR_W > widths[i] ? ` textLength="${widths[i].toFixed(1)}" lengthAdjust="spacingAndGlyphs"` : '';
    parts.push(`<text x="${centres[i].toFixed(1)}" y="${baseline.toFixed(1)}"${tl}>${escapeXml(w)}</text>`);
  });
  parts.push(`</g>`);
  const ly = height - PAD;
  parts.push(
    `<g class="legend" font-size="11"><line x1="${PAD}" y1="${ly - 4}" x2="${PAD + 18}" y2="${ly - 4}" stroke="#222" stroke-width="1.5"/><text x="${PAD + 22}" y="${ly}">gold (above)</text>` +
      `<line x1="${PAD + 110}" y1="${ly - 4}" x2="${PAD + 128}" y2="${ly - 4}" stroke="#1f77b4" stroke-width="1.5"/><text x="${PAD + 132}" y="${ly}">predicted, in gold</text>` +
      `<line x1="${PAD + 250}" y1="${ly - 4}" x2="${PAD + 268}" y2="${ly - 4}" stroke="#ff7f0e" stroke-width="1.5" stroke-dasharray="4 3"/><text x="${PAD + 272}" y="${ly}">predicted, not in gold (${matched}/${gold.length} gold edges found)</text></g>`,
  );
  parts.push(`</svg>`);
  // the legend is ~560px wide; never clip it
  const svg = parts.join('\n');
  const minW = PAD + 272 + 7 * 44;
  return { kind: 'svg', svg: width >= minW ? svg : svg.replace(/width="(\d+)" height="(\d+)" viewBox="0 0 (\d+) (\d+)"/, `width="${minW}" height="$2" viewBox="0 0 ${minW} $4"`) };
}

// Charts as inline SVG, drawn on the server: no script, no external file, nothing the page's
// Content-Security-Policy has to allow (colours are presentation attributes, not style). Each
// chart is an <svg role="img"> named by its <title> and described by its <desc>; each bar segment
// carries a <title> with its figures; the page shows the same figures in a table beside it.
import { html } from 'hono/html';
import type { Html } from './html.js';

export interface Series {
  key: string;
  label: string;
  /** A colour readable on the light and the dark theme. */
  color: string;
  /** One value per bar. */
  values: readonly number[];
}

interface StackedBarsOptions {
  /** Unique on the page: the ids of the title and description derive from it. */
  id: string;
  title: string;
  desc: string;
  /** One label per bar (e.g. the Monday of the week, YYYY-MM-DD). */
  bars: readonly string[];
  series: readonly Series[];
  /** count: stacked values; share: each bar scaled to 100 % of its total (an empty bar stays empty). */
  mode: 'count' | 'share';
}

// Fixed palette (Okabe–Ito, colour-blind safe), in series order.
export const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#999999', '#6b6b6b', '#f0e442'] as const;

const W = 480;
const H = 240;
const PAD = { left: 56, right: 22, top: 10, bottom: 30 };
const FONT = 15;

function niceMax(n: number): number {
  if (n <= 4) return Math.max(n, 1);
  const mag = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * mag >= n) return step * mag;
  return 10 * mag;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

function pct(n: number, of: number): string {
  return of === 0 ? '0 %' : `${Math.round((n / of) * 100)} %`;
}

/** MM-DD of a YYYY-MM-DD label, for the axis. */
function shortLabel(s: string): string {
  return /^\d{4}-\d{2}-\d{2}$/.test(s) ? s.slice(5) : s;
}

export function stackedBars(o: StackedBarsOptions): Html {
  const n = o.bars.length;
  const totals = o.bars.map((_, i) => o.series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = o.mode === 'share' ? 1 : niceMax(Math.max(0, ...totals));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = n > 0 ? plotW / n : plotW;
  const barW = Math.max(1, slot * 0.72);
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH;
  const ticks = o.mode === 'share' ? [0, 0.5, 1] : [0, max / 2, max];
  const tickText = (t: number) => (o.mode === 'share' ? `${Math.round(t * 100)}%` : String(Number.isInteger(t) ? t : round1(t)));
  // At most ~6 axis labels: every k-th bar, always the last.
  const every = Math.max(1, Math.ceil(n / 6));
  const titleId = `${o.id}-title`;
  const descId = `${o.id}-desc`;

  const bars = o.bars.map((label, i) => {
    const total = totals[i] ?? 0;
    let acc = 0;
    const x = PAD.left + i * slot + (slot - barW) / 2;
    const segs = o.series.map((s) => {
      const v = s.values[i] ?? 0;
      if (v === 0 || total === 0) return '';
      const from = o.mode === 'share' ? acc / total : acc;
      acc += v;
      const to = o.mode === 'share' ? acc / total : acc;
      const top = y(to);
      const h = Math.max(0.5, y(from) - top);
      return html`<rect x="${round1(x)}" y="${round1(top)}" width="${round1(barW)}" height="${round1(h)}" fill="${s.color}"><title>${label} · ${s.label}: ${v} of ${total} (${pct(v, total)})</title></rect>`;
    });
    const tick =
      i % every === 0 || i === n - 1
        ? html`<text x="${round1(PAD.left + i * slot + slot / 2)}" y="${H - 8}" text-anchor="middle" font-size="${FONT}" fill="currentColor">${shortLabel(label)}</text>`
        : '';
    return html`<g>${segs}${tick}</g>`;
  });

  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-labelledby="${titleId} ${descId}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">
<title id="${titleId}">${o.title}</title>
<desc id="${descId}">${o.desc}</desc>
${ticks.map(
  (t) =>
    html`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${round1(y(t))}" y2="${round1(y(t))}" stroke="currentColor" stroke-opacity="0.25" stroke-width="1"/><text x="${PAD.left - 5}" y="${round1(y(t) + FONT / 3)}" text-anchor="end" font-size="${FONT}" fill="currentColor">${tickText(t)}</text>`,
)}
${bars}
</svg>`;
}

/** The colour key of a chart, as HTML (readable at any width; the SVG text scales down). */
export function legend(series: readonly Series[], totals?: readonly number[]): Html {
  return html`<ul class="legend">${series.map(
    (s, i) =>
      html`<li><svg class="swatch" viewBox="0 0 10 10" width="12" height="12" aria-hidden="true" focusable="false"><rect width="10" height="10" fill="${s.color}"/></svg> ${s.label}${totals ? html` <span class="muted">${totals[i] ?? 0}</span>` : ''}</li>`,
  )}</ul>`;
}

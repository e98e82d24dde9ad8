/**
 * Hand-written SVG charts for the HTML report: no script, no external files, so the
 * report opens anywhere and can be committed as is.
 */
import type { PercentileCurve } from '../load/load-generator.js';

export const escapeXml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const FONT = 'font-family="system-ui, sans-serif" font-size="12"';

export interface Bar {
  readonly label: string;
  readonly value: number;
  readonly color: string;
  /** Shown after the value, e.g. the ratio to kmux. */
  readonly note?: string;
}

/** Horizontal bars, one per server, longest scaled to the full width. */
export function barChart(title: string, unit: string, bars: readonly Bar[]): string {
  const shown = bars.filter((b) => Number.isFinite(b.value));
  const labelWidth = 150;
  const plotWidth = 330;
  const rowHeight = 24;
  const height = 30 + shown.length * rowHeight + 10;
  const width = labelWidth + plotWidth + 170;
  const top = Math.max(...shown.map((b) => b.value), 0) || 1;
  const rows = shown.map((b, i) => {
    const y = 30 + i * rowHeight;
    const w = Math.max(1, (b.value / top) * plotWidth);
    const value = `${formatValue(b.value)} ${unit}${b.note ? `  ${b.note}` : ''}`;
    return (
      `<text x="${labelWidth - 8}" y="${y + 15}" text-anchor="end">${escapeXml(b.label)}</text>` +
      `<rect x="${labelWidth}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowHeight - 8}" rx="3" fill="${b.color}"/>` +
      `<text x="${labelWidth + w + 6}" y="${y + 15}" fill="#333">${escapeXml(value)}</text>`
    );
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" ${FONT} role="img">` +
    `<title>${escapeXml(title)}</title><text x="0" y="16" font-weight="600">${escapeXml(title)}</text>${rows.join('')}</svg>`
  );
}

export interface Series {
  readonly label: string;
  readonly color: string;
  readonly points: PercentileCurve;
}

/** Where a percentile sits on the x axis: one step per "nine" (90, 99, 99.9 ...); max after 99.99. */
const MAX_X = 4.6;
function nines(percent: number): number {
  if (percent >= 100) return MAX_X;
  return Math.min(4.3, -Math.log10(1 - percent / 100));
}

/**
 * The classic latency-by-percentile plot: percentiles spread by their nines on x, latency
 * on a log scale on y, a line per server. Tails that rise early are visible at a glance.
 */
export function percentileChart(title: string, series: readonly Series[]): string {
  const left = 64;
  const right = 150;
  const top = 30;
  const plotWidth = 420;
  const plotHeight = 220;
  const width = left + plotWidth + right;
  const height = top + plotHeight + 40;
  const values = series.flatMap((s) => s.points.map(([, us]) => us)).filter((us) => us > 0);
  const low = Math.floor(Math.log10(Math.max(1, Math.min(...values, 1e9))));
  const high = Math.max(low + 1, Math.ceil(Math.log10(Math.max(...values, 10))));
  const x = (percent: number) => left + (nines(percent) / MAX_X) * plotWidth;
  const y = (us: number) => top + plotHeight - ((Math.log10(Math.max(us, 1)) - low) / (high - low)) * plotHeight;
  const parts: string[] = [];
  for (let decade = low; decade <= high; decade++) {
    const yy = y(10 ** decade).toFixed(1);
    parts.push(`<line x1="${left}" x2="${left + plotWidth}" y1="${yy}" y2="${yy}" stroke="#e3e3e3"/>`);
    parts.push(`<text x="${left - 6}" y="${Number(yy) + 4}" text-anchor="end" fill="#555">${formatMicros(10 ** decade)}</text>`);
  }
  for (const [percent, label] of [[50, '50%'], [90, '90%'], [99, '99%'], [99.9, '99.9%'], [99.99, '99.99%'], [100, 'max']] as const) {
    const xx = x(percent).toFixed(1);
    parts.push(`<line x1="${xx}" x2="${xx}" y1="${top}" y2="${top + plotHeight}" stroke="#eee"/>`);
    parts.push(`<text x="${xx}" y="${top + plotHeight + 16}" text-anchor="middle" fill="#555">${label}</text>`);
  }
  series.forEach((s, i) => {
    const points = s.points.filter(([, us]) => Number.isFinite(us)).map(([p, us]) => `${x(p).toFixed(1)},${y(us).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${points.join(' ')}"/>`);
    for (const point of points) {
      const [px, py] = point.split(',');
      parts.push(`<circle cx="${px}" cy="${py}" r="2.5" fill="${s.color}"/>`);
    }
    const ly = top + 8 + i * 18;
    parts.push(`<rect x="${left + plotWidth + 14}" y="${ly - 8}" width="12" height="4" fill="${s.color}"/>`);
    parts.push(`<text x="${left + plotWidth + 32}" y="${ly - 2}">${escapeXml(s.label)}</text>`);
  });
  parts.push(`<text x="${left + plotWidth / 2}" y="${height - 4}" text-anchor="middle" fill="#555">percentile</text>`);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" ${FONT} role="img">` +
    `<title>${escapeXml(title)}</title><text x="0" y="16" font-weight="600">${escapeXml(title)}</text>` +
    `<rect x="${left}" y="${top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#ccc"/>${parts.join('')}</svg>`
  );
}

function formatMicros(us: number): string {
  if (us >= 1e6) return `${us / 1e6} s`;
  if (us >= 1e3) return `${us / 1e3} ms`;
  return `${us} µs`;
}

function formatValue(value: number): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: value < 10 ? 2 : value < 100 ? 1 : 0 });
}

import { formatCount } from "../format.js";

export interface Bar {
  label: string;
  /** Undefined for a suppressed cell: shown as such, never as zero. */
  value: number | undefined;
}

/**
 * Horizontal bars for one column's value counts (a category per bar). A suppressed cell is drawn as a
 * hatched stub labelled "suppressed", so no one mistakes it for a small number.
 */
export function BarChart({ title, bars, width = 360 }: { title: string; bars: Bar[]; width?: number }) {
  const rowHeight = 22;
  const labelWidth = 120;
  const valueWidth = 84;
  const plotWidth = width - labelWidth - valueWidth;
  const max = Math.max(1, ...bars.map((b) => b.value ?? 0));
  const height = Math.max(1, bars.length) * rowHeight + 4;
  const summary = bars.map((b) => `${b.label}: ${b.value === undefined ? "suppressed" : formatCount(b.value)}`).join(", ");
  return (
    <figure className="chart bar-chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} width="100%" role="img" aria-label={`${title}. ${summary || "no values"}`}>
        <defs>
          <pattern id="suppressed-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
            <rect width="6" height="6" fill="#f3f4f6" />
            <line x1="0" y1="0" x2="0" y2="6" stroke="#6b7280" strokeWidth="2" />
          </pattern>
        </defs>
        {bars.map((b, i) => {
          const y = i * rowHeight + 2;
          const w = b.value === undefined ? 24 : Math.max(1, (b.value / max) * plotWidth);
          return (
            <g key={b.label} data-suppressed={b.value === undefined || undefined}>
              <text x={labelWidth - 6} y={y + 14} textAnchor="end" className="chart-label">
                {b.label.length > 18 ? `${b.label.slice(0, 17)}…` : b.label}
              </text>
              <rect x={labelWidth} y={y + 3} width={w} height={rowHeight - 8} fill={b.value === undefined ? "url(#suppressed-hatch)" : "#1d4ed8"} />
              <text x={labelWidth + w + 6} y={y + 14} className="chart-value">
                {b.value === undefined ? "suppressed" : formatCount(b.value)}
              </text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

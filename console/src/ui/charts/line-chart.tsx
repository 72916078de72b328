import { formatNumber } from "../format.js";
import { niceTicks, seriesStyle } from "./palette.js";

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

const W = 560;
const H = 240;
const M = { top: 12, right: 16, bottom: 36, left: 56 };

/**
 * Lines over a shared x axis (rounds or steps), one per series (a trust), with a legend that names each
 * line's colour and dash. Its size is fixed by its viewBox, so points arriving never move the page.
 */
export function LineChart({ title, series, xLabel, yLabel }: { title: string; series: Series[]; xLabel: string; yLabel: string }) {
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const xTicks = niceTicks(all.length ? Math.min(...xs) : 0, all.length ? Math.max(...xs) : 1, 6);
  const yTicks = niceTicks(all.length ? Math.min(...ys) : 0, all.length ? Math.max(...ys) : 1, 5);
  const [x0, x1] = [xTicks[0]!, xTicks[xTicks.length - 1]!];
  const [y0, y1] = [yTicks[0]!, yTicks[yTicks.length - 1]!];
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0 || 1)) * (W - M.left - M.right);
  const sy = (y: number) => H - M.bottom - ((y - y0) / (y1 - y0 || 1)) * (H - M.top - M.bottom);
  const summary = series.map((s) => `${s.name}: ${s.points.length} points${s.points.length ? `, last ${formatNumber(s.points[s.points.length - 1]!.y)}` : ""}`).join("; ");
  return (
    <figure className="chart line-chart">
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" role="img" aria-label={`${title} by ${xLabel}. ${summary || "no points yet"}`}>
        {yTicks.map((t) => (
          <g key={`y${t}`}>
            <line x1={M.left} x2={W - M.right} y1={sy(t)} y2={sy(t)} className="chart-grid" />
            <text x={M.left - 6} y={sy(t) + 4} textAnchor="end" className="chart-tick">
              {formatNumber(t)}
            </text>
          </g>
        ))}
        {xTicks.map((t) => (
          <text key={`x${t}`} x={sx(t)} y={H - M.bottom + 16} textAnchor="middle" className="chart-tick">
            {formatNumber(t)}
          </text>
        ))}
        <text x={(M.left + W - M.right) / 2} y={H - 4} textAnchor="middle" className="chart-axis-label">
          {xLabel}
        </text>
        <text x={12} y={(M.top + H - M.bottom) / 2} textAnchor="middle" transform={`rotate(-90 12 ${(M.top + H - M.bottom) / 2})`} className="chart-axis-label">
          {yLabel}
        </text>
        {series.map((s, i) => {
          const style = seriesStyle(i);
          const pts = [...s.points].sort((a, b) => a.x - b.x);
          return (
            <g key={s.name} data-series={s.name}>
              <polyline points={pts.map((p) => `${sx(p.x)},${sy(p.y)}`).join(" ")} fill="none" stroke={style.color} strokeWidth={2} strokeDasharray={style.dash || undefined} />
              {pts.map((p) => (
                <circle key={p.x} cx={sx(p.x)} cy={sy(p.y)} r={3} fill={style.color}>
                  <title>{`${s.name}, ${xLabel} ${formatNumber(p.x)}: ${formatNumber(p.y)}`}</title>
                </circle>
              ))}
            </g>
          );
        })}
        {all.length === 0 ? (
          <text x={W / 2} y={H / 2} textAnchor="middle" className="chart-empty">
            No points yet
          </text>
        ) : null}
      </svg>
      <ul className="legend" aria-label={`${title}: series`}>
        {series.map((s, i) => (
          <li key={s.name}>
            <svg width="28" height="10" aria-hidden="true">
              <line x1="0" x2="28" y1="5" y2="5" stroke={seriesStyle(i).color} strokeWidth={2} strokeDasharray={seriesStyle(i).dash || undefined} />
            </svg>
            {s.name}
          </li>
        ))}
      </ul>
    </figure>
  );
}

import type { CategoricalSummary, ColumnSummary, NumericSummary } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { BarChart, type Bar } from "../../ui/charts/bar-chart.js";
import { formatCount, formatNumber } from "../../ui/format.js";
import { Badge } from "../../ui/page.js";

/** One chart or fact list per result column of a trust's answer. */
export function ColumnCharts({ columns, threshold }: { columns: ColumnSummary[]; threshold: number }) {
  if (columns.length === 0) return <p className="hint">The trust reported no column statistics.</p>;
  // Columns the trust does not summarise (identifiers such as person_id) are named, not charted.
  const bare = columns.filter((c) => c.summary.case === undefined).map((c) => c.name);
  return (
    <div className="cohorts-columns">
      {columns.map((c) =>
        c.summary.case === "categorical" ? (
          <CategoricalChart key={c.name} name={c.name} summary={c.summary.value} threshold={threshold} />
        ) : c.summary.case === "numeric" ? (
          <NumericFacts key={c.name} name={c.name} summary={c.summary.value} threshold={threshold} />
        ) : null,
      )}
      {bare.length ? <p className="cohorts-column-note">Not summarised: {bare.join(", ")}.</p> : null}
    </div>
  );
}

/**
 * Counts per category. Categories under the threshold are never shown as numbers: added together as
 * "other" when that sum reaches the threshold, else one hatched bar marked suppressed.
 */
function CategoricalChart({ name, summary, threshold }: { name: string; summary: CategoricalSummary; threshold: number }) {
  const bars: Bar[] = summary.categories.map((c) => ({ label: c.value === "" ? "(empty)" : c.value, value: Number(c.count) }));
  if (summary.hasSuppressed) bars.push(summary.otherCount > 0n ? { label: "other", value: Number(summary.otherCount) } : { label: "small categories", value: undefined });
  return (
    <div className="cohorts-column">
      <BarChart title={name} bars={bars} width={420} />
      {summary.hasSuppressed ? (
        <p className="cohorts-column-note">
          {summary.otherCount > 0n
            ? `“other” adds up categories with fewer than ${threshold} records each.`
            : `Categories with fewer than ${threshold} records are suppressed.`}
        </p>
      ) : null}
    </div>
  );
}

const BOX_W = 440;
const BOX_H = 40;

/** Summary statistics of a numeric column: a box plot (min, quartiles, max) and the figures. */
function NumericFacts({ name, summary, threshold }: { name: string; summary: NumericSummary; threshold: number }) {
  if (summary.suppressed) {
    return (
      <figure className="chart cohorts-column">
        <figcaption>{name}</figcaption>
        <p>
          <Badge tone="warn">suppressed</Badge> Fewer than {threshold} values: the trust withholds the statistics.
        </p>
      </figure>
    );
  }
  const { min, p25, median, p75, max } = summary;
  const pad = 8;
  const x = (v: number) => pad + (max === min ? 0.5 : (v - min) / (max - min)) * (BOX_W - 2 * pad);
  const label = `${name}: ${formatCount(summary.count)} values, minimum ${formatNumber(min)}, lower quartile ${formatNumber(p25)}, median ${formatNumber(median)}, upper quartile ${formatNumber(p75)}, maximum ${formatNumber(max)}, mean ${formatNumber(summary.mean)}`;
  return (
    <figure className="chart cohorts-column">
      <figcaption>{name}</figcaption>
      <svg viewBox={`0 0 ${BOX_W} ${BOX_H}`} width="100%" role="img" aria-label={label}>
        <line x1={x(min)} x2={x(max)} y1={BOX_H / 2} y2={BOX_H / 2} stroke="#374151" strokeWidth={1.5} />
        <line x1={x(min)} x2={x(min)} y1={10} y2={BOX_H - 10} stroke="#374151" strokeWidth={1.5} />
        <line x1={x(max)} x2={x(max)} y1={10} y2={BOX_H - 10} stroke="#374151" strokeWidth={1.5} />
        <rect x={x(p25)} y={6} width={Math.max(1, x(p75) - x(p25))} height={BOX_H - 12} fill="#dbeafe" stroke="#1d4ed8" strokeWidth={1.5} />
        <line x1={x(median)} x2={x(median)} y1={6} y2={BOX_H - 6} stroke="#1e3a8a" strokeWidth={3} />
      </svg>
      <dl className="cohorts-numbers">
        <div>
          <dt>n</dt>
          <dd>{formatCount(summary.count)}</dd>
        </div>
        <div>
          <dt>mean ± sd</dt>
          <dd>
            {formatNumber(summary.mean)} ± {formatNumber(summary.stddev)}
          </dd>
        </div>
        <div>
          <dt>min</dt>
          <dd>{formatNumber(min)}</dd>
        </div>
        <div>
          <dt>quartiles</dt>
          <dd>
            {formatNumber(p25)} · {formatNumber(median)} · {formatNumber(p75)}
          </dd>
        </div>
        <div>
          <dt>max</dt>
          <dd>{formatNumber(max)}</dd>
        </div>
      </dl>
    </figure>
  );
}

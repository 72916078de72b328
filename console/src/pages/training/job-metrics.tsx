import { useMemo } from "react";
import type { MetricPoint } from "@flip/gen/flip/hub/v1/training_pb.js";
import { LineChart, type Series } from "../../ui/charts/line-chart.js";

interface Chart {
  label: string;
  xLabel: string;
  series: Series[];
}

/**
 * One chart per metric label, one line per trust. The x axis is the workload's own (e.g. "epoch") when
 * every point of the label has one, else the round. Every trust of the job gets its line (and legend
 * entry) from the start, so colours and legends stay put as points arrive.
 */
export function chartsOf(metrics: readonly MetricPoint[], trustCodes: ReadonlyMap<string, string>): Chart[] {
  const byLabel = new Map<string, MetricPoint[]>();
  for (const m of metrics) {
    const list = byLabel.get(m.label);
    if (list) list.push(m);
    else byLabel.set(m.label, [m]);
  }
  const codeOf = (m: MetricPoint) => m.attributes["trust"] || trustCodes.get(m.trustId) || m.trustId.slice(0, 8);
  const allTrusts = [...new Set([...trustCodes.values(), ...metrics.map(codeOf)])].sort();
  return [...byLabel.keys()].sort().map((label) => {
    const points = byLabel.get(label)!;
    const xLabels = new Set(points.map((p) => p.xLabel));
    const custom = xLabels.size === 1 && !xLabels.has("") ? [...xLabels][0]! : undefined;
    const lines = new Map(allTrusts.map((t) => [t, new Map<number, number>()]));
    for (const p of points) {
      // A point reported again (same x) replaces the earlier one.
      lines.get(codeOf(p))?.set(custom ? p.xValue : p.round, p.value);
    }
    return {
      label,
      xLabel: custom ?? "round",
      series: [...lines].map(([name, xy]) => ({ name, points: [...xy].map(([x, y]) => ({ x, y })) })),
    };
  });
}

export function JobMetrics({ metrics, trustCodes }: { metrics: readonly MetricPoint[]; trustCodes: ReadonlyMap<string, string> }) {
  const charts = useMemo(() => chartsOf(metrics, trustCodes), [metrics, trustCodes]);
  // Until the first point, an empty chart holds the room the charts will take.
  const shown = charts.length ? charts : [{ label: "No metrics yet", xLabel: "round", series: [...new Set(trustCodes.values())].sort().map((name) => ({ name, points: [] })) }];
  return (
    <div className="training-charts">
      {shown.map((c) => (
        <LineChart key={c.label} title={c.label} series={c.series} xLabel={c.xLabel} yLabel={charts.length ? c.label : "value"} />
      ))}
    </div>
  );
}

/** Series colours with at least 3:1 contrast on white, each paired with a dash pattern so colour is never the only cue. */
export const SERIES_STYLES: { color: string; dash: string }[] = [
  { color: "#1d4ed8", dash: "" },
  { color: "#b45309", dash: "6 3" },
  { color: "#047857", dash: "2 3" },
  { color: "#9d174d", dash: "8 3 2 3" },
  { color: "#5b21b6", dash: "4 4" },
  { color: "#374151", dash: "1 2" },
];

export const seriesStyle = (i: number) => SERIES_STYLES[i % SERIES_STYLES.length]!;

/** Round axis ticks covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0];
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
  return ticks;
}

/**
 * The original platform's task delivery, modelled: each trust polls the hub every `intervalMs` (its
 * phase random), takes every pending task and runs them one after another, each costing `serviceMs`
 * (run plus posting the result). Fed the same task creation times as a measured push run, it gives
 * that workload's latencies under polling.
 */
export interface PolledTask {
  trust: number;
  /** When the task was created, ms on any clock shared by all tasks. */
  createdAt: number;
}

export interface PollingOutcome {
  /** Created → result recorded, per task, in input order. */
  latenciesMs: number[];
  /** From the first creation to the last result. */
  spanMs: number;
}

export function simulatePolling(tasks: PolledTask[], opts: { intervalMs: number; serviceMs: number; random?: () => number }): PollingOutcome {
  const random = opts.random ?? Math.random;
  const phase = new Map<number, number>();
  const busyUntil = new Map<number, number>();
  const latencies = new Array<number>(tasks.length);
  const order = tasks.map((t, i) => ({ ...t, i })).sort((a, b) => a.createdAt - b.createdAt);
  for (const t of order) {
    if (!phase.has(t.trust)) phase.set(t.trust, random() * opts.intervalMs);
    const p = phase.get(t.trust)!;
    // The first poll at or after creation (and after the trust finished its previous batch: polls do not overlap).
    const earliest = Math.max(t.createdAt, busyUntil.get(t.trust) ?? -Infinity);
    const k = Math.ceil((earliest - p) / opts.intervalMs);
    const poll = p + Math.max(0, k) * opts.intervalMs;
    // Tasks fetched by one poll run sequentially in creation order.
    const start = Math.max(poll, busyUntil.get(t.trust) ?? -Infinity);
    const end = start + opts.serviceMs;
    busyUntil.set(t.trust, end);
    latencies[t.i] = end - t.createdAt;
  }
  const first = Math.min(...tasks.map((t) => t.createdAt));
  const last = Math.max(...tasks.map((t, i) => t.createdAt + latencies[i]!));
  return { latenciesMs: latencies, spanMs: last - first };
}

/** The value below which `p` of the sorted samples fall (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

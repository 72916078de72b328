/**
 * The original platform's task delivery, modelled: each trust's poller wakes (at a random phase),
 * fetches every pending task, runs them one after another at `serviceMs` each (run plus posting the
 * result), then sleeps `intervalMs` before polling again. Fed the same task creation times as a
 * measured push run, it gives that workload's latencies under polling.
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
  const latencies = new Array<number>(tasks.length);
  const byTrust = new Map<number, { createdAt: number; i: number }[]>();
  tasks.forEach((t, i) => byTrust.set(t.trust, [...(byTrust.get(t.trust) ?? []), { createdAt: t.createdAt, i }]));
  for (const list of byTrust.values()) {
    list.sort((a, b) => a.createdAt - b.createdAt);
    let poll = random() * opts.intervalMs;
    let next = 0;
    while (next < list.length) {
      // Idle polls find nothing: skip ahead to the first poll at or after the next task's creation.
      if (list[next]!.createdAt > poll) poll += Math.ceil((list[next]!.createdAt - poll) / opts.intervalMs) * opts.intervalMs;
      let clock = poll;
      while (next < list.length && list[next]!.createdAt <= poll) {
        clock += opts.serviceMs;
        latencies[list[next]!.i] = clock - list[next]!.createdAt;
        next++;
      }
      poll = clock + opts.intervalMs;
    }
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

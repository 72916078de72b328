import type { Counter, Histogram, Meter } from "@opentelemetry/api";
import { LATENCY_BUCKETS_S } from "@flip/shared/telemetry/metrics.js";
import type { CohortStatistics } from "./statistics/summarize-cohort.js";

/**
 * answered: statistics went back; suppressed: the cohort was too small (or looked so, see statistics.ts);
 * error: no statistics (query rejected, denied by policy, budget spent, timed out, or failed).
 */
export type CohortQueryOutcome = "answered" | "suppressed" | "error";

/** What data-access measures: its cohort statistics queries, by outcome only (never project, query or SQL). */
export class DataAccessMetrics {
  private readonly queries: Counter;
  private readonly duration: Histogram;

  constructor(meter: Meter) {
    this.queries = meter.createCounter("flip_data_access_cohort_queries", {
      description: "Cohort statistics queries by outcome (answered, suppressed, error)",
      unit: "{query}",
    });
    this.duration = meter.createHistogram("flip_data_access_cohort_query_seconds", {
      description: "Time to validate, run and summarize one cohort statistics query, by outcome",
      unit: "s",
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
    });
  }

  /** Runs one cohort statistics query, counting its outcome and how long it took. */
  async measureCohortQuery(run: () => Promise<CohortStatistics>): Promise<CohortStatistics> {
    const started = performance.now();
    let outcome: CohortQueryOutcome = "error";
    try {
      const stats = await run();
      outcome = stats.outcome === "ok" ? "answered" : "suppressed";
      return stats;
    } finally {
      this.queries.add(1, { outcome });
      this.duration.record((performance.now() - started) / 1000, { outcome });
    }
  }
}

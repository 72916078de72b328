import type { Counter, Histogram, Meter } from "@opentelemetry/api";
import { LATENCY_BUCKETS_S } from "@flip/shared/telemetry/metrics.js";
import type { AnswerStateName } from "../cohorts/entities.js";

/** How a training round ended: averaged, evaluated (an evaluation job's only round), or failed. */
export type RoundOutcome = "aggregated" | "evaluated" | "failed";

/** upload: trust to hub; download: hub to trust. */
export type ArtifactDirection = "upload" | "download";

/** Rounds last from seconds (a quick workload) to hours. */
const ROUND_BUCKETS_S = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200];

/**
 * What the hub's domains record as it happens (the counts read from the database are in
 * database-gauges.ts). Labels are only task kinds, trust codes, states and outcomes, each a small set:
 * never ids, SQL, emails or free text.
 */
export class HubMetrics {
  private readonly dispatch: Histogram;
  private readonly answerLatency: Histogram;
  private readonly answers: Counter;
  private readonly rounds: Histogram;
  private readonly aggregationBytes: Counter;
  private readonly aggregationTime: Histogram;
  private readonly artifacts: Counter;

  constructor(readonly meter: Meter) {
    this.dispatch = meter.createHistogram("flip_task_dispatch_seconds", {
      description: "Time from a task's creation to its offer to the trust's gateway over the link, by task kind",
      unit: "s",
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
    });
    this.answerLatency = meter.createHistogram("flip_cohort_answer_seconds", {
      description: "Time from a cohort query's submission to a trust's answer recorded at the hub, by trust",
      unit: "s",
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
    });
    this.answers = meter.createCounter("flip_cohort_answers", {
      description: "Trusts' answers to cohort queries, by trust and outcome (ok, empty, suppressed, error)",
      unit: "{answer}",
    });
    this.rounds = meter.createHistogram("flip_training_round_seconds", {
      description: "Time from a training round's start to its end, by outcome (aggregated, evaluated, failed)",
      unit: "s",
      advice: { explicitBucketBoundaries: ROUND_BUCKETS_S },
    });
    this.aggregationBytes = meter.createCounter("flip_aggregation_input_bytes", {
      description: "Bytes of trusts' model updates averaged by this replica",
      unit: "By",
    });
    this.aggregationTime = meter.createHistogram("flip_aggregation_seconds", {
      description: "Time this replica took to average one round's updates and store the result",
      unit: "s",
      advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
    });
    this.artifacts = meter.createCounter("flip_artifact_bytes", {
      description: "Artifact bytes moved between trusts and this replica, by direction (upload: to the hub, download: to a trust)",
      unit: "By",
    });
  }

  /** A task was offered to its trust's gateway (any attempt). */
  taskOffered(kind: string, createdAt: Date): void {
    this.dispatch.record(secondsSince(createdAt), { kind });
  }

  /** A trust's answer to a cohort query was recorded (once per answer, on the replica that recorded it). */
  cohortAnswered(trust: string, outcome: AnswerStateName, submittedAt: Date, answeredAt: Date): void {
    this.answerLatency.record(Math.max(0, (answeredAt.getTime() - submittedAt.getTime()) / 1000), { trust });
    this.answers.add(1, { trust, outcome });
  }

  /** A round ended (once per round, on the replica that ended it). */
  roundEnded(outcome: RoundOutcome, startedAt: Date): void {
    this.rounds.record(secondsSince(startedAt), { outcome });
  }

  /** A round's updates (`inputBytes` in all) were averaged in `seconds`. */
  aggregated(inputBytes: number, seconds: number): void {
    this.aggregationBytes.add(inputBytes);
    this.aggregationTime.record(seconds);
  }

  artifactBytes(direction: ArtifactDirection, bytes: number): void {
    this.artifacts.add(bytes, { direction });
  }

  /** Reports `count()` as flip_trusts_linked at each scrape. */
  observeLinkedTrusts(count: () => number): void {
    this.meter
      .createObservableGauge("flip_trusts_linked", { description: "Trusts whose gateway holds a live link to this hub replica", unit: "{trust}" })
      .addCallback((result) => result.observe(count()));
  }
}

function secondsSince(at: Date): number {
  return Math.max(0, (Date.now() - at.getTime()) / 1000);
}

import { create } from "@bufbuild/protobuf";
import {
  TrainingEventSchema,
  TrainingLogSchema,
  TrainingMetricSchema,
  TrainingReportSchema,
  type TrainingEvent,
  type TrainingLog,
  type TrainingMetric,
  type TrainingReport,
} from "@flip/gen/flip/link/v1/tasks_pb.js";

/**
 * Sequence numbers for a trust's reports within a job. The hub stores each item once by its number, so a
 * number must never be reused, even by a gateway restarted mid-job: they start from the clock (µs since
 * the epoch) and only increase.
 */
export class SeqClock {
  private last = 0n;

  constructor(private readonly nowMs: () => number = Date.now) {}

  next(): bigint {
    const fromClock = BigInt(Math.floor(this.nowMs())) * 1000n;
    this.last = this.last + 1n > fromClock ? this.last + 1n : fromClock;
    return this.last;
  }
}

/** Items of each kind one round may report; the hub stores no more per report. */
export const MAX_REPORT_ITEMS = 5000;

export interface ReportLimits {
  /** Log bytes forwarded per round (between two results); 0 forwards none. */
  logBytesPerRound: number;
}

export type MetricInput = Pick<TrainingMetric, "label" | "value" | "round" | "xLabel" | "xValue">;
export type EventInput = Pick<TrainingEvent, "kind" | "round" | "message" | "details">;

/**
 * What a job's workload reported since the round's last result: sent live a piece at a time
 * (`takeLive`, what is new since the last call) and whole again with the result (`takeAll`, which
 * starts the next round's buffer). Log lines beyond the round's byte allowance are withheld and counted.
 */
export class ReportBuffer {
  private metrics: TrainingMetric[] = [];
  private events: TrainingEvent[] = [];
  private logs: TrainingLog[] = [];
  private pendingLines: string[] = [];
  private live = { metrics: 0, events: 0, logs: 0 };
  private logBytes = 0;
  private withheld = { lines: 0, bytes: 0 };
  private dropped = 0;

  constructor(
    private readonly seq: SeqClock,
    private readonly limits: ReportLimits,
  ) {}

  metric(m: MetricInput): void {
    if (this.metrics.length >= MAX_REPORT_ITEMS) {
      this.dropped++;
      return;
    }
    this.metrics.push(create(TrainingMetricSchema, { ...m, seq: this.seq.next() }));
  }

  event(e: EventInput): void {
    if (this.events.length >= MAX_REPORT_ITEMS) {
      this.dropped++;
      return;
    }
    this.events.push(create(TrainingEventSchema, { ...e, seq: this.seq.next() }));
  }

  /** Log lines to forward (the caller decides whether the policy lets them leave). */
  logLines(lines: readonly string[]): void {
    for (const line of lines) {
      const bytes = Buffer.byteLength(line) + 1;
      if (this.logBytes + bytes > this.limits.logBytesPerRound) {
        this.withheld.lines++;
        this.withheld.bytes += bytes;
        continue;
      }
      this.logBytes += bytes;
      this.pendingLines.push(line);
    }
  }

  /** What was reported since the last takeLive; undefined when nothing was. */
  takeLive(): TrainingReport | undefined {
    this.flushLines();
    const report = create(TrainingReportSchema, {
      metrics: this.metrics.slice(this.live.metrics),
      events: this.events.slice(this.live.events),
      logs: this.logs.slice(this.live.logs),
    });
    this.live = { metrics: this.metrics.length, events: this.events.length, logs: this.logs.length };
    return report.metrics.length + report.events.length + report.logs.length > 0 ? report : undefined;
  }

  /** Everything since the last takeAll (what a round's or STOP's result carries); the buffer starts over. */
  takeAll(): TrainingReport {
    if (this.withheld.lines > 0) {
      this.pendingLines.push(
        `[flip] ${this.withheld.lines} log lines (${this.withheld.bytes} bytes) stayed at the trust: over the ${this.limits.logBytesPerRound} bytes a round may forward`,
      );
    }
    if (this.dropped > 0) {
      this.events.push(
        create(TrainingEventSchema, {
          seq: this.seq.next(),
          kind: "reports_dropped",
          message: `${this.dropped} metrics or events beyond the ${MAX_REPORT_ITEMS} a round may report were dropped at the trust`,
        }),
      );
    }
    this.flushLines();
    const report = create(TrainingReportSchema, { metrics: this.metrics, events: this.events, logs: this.logs });
    this.metrics = [];
    this.events = [];
    this.logs = [];
    this.live = { metrics: 0, events: 0, logs: 0 };
    this.logBytes = 0;
    this.withheld = { lines: 0, bytes: 0 };
    this.dropped = 0;
    return report;
  }

  private flushLines(): void {
    if (this.pendingLines.length === 0) return;
    this.logs.push(create(TrainingLogSchema, { seq: this.seq.next(), lines: this.pendingLines }));
    this.pendingLines = [];
  }
}

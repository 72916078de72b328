import * as path from "node:path";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { ROOT_CONTEXT, SpanStatusCode, type Span } from "@opentelemetry/api";
import type { Logger } from "@flip/shared/logging/logger.js";
import { extractTraceContext, withSpan } from "@flip/shared/telemetry/trace-context.js";
import type { ArtifactDeps } from "../artifacts/deps.js";
import { adoptHubArtifact } from "../artifacts/hub-artifacts.js";
import type { Database } from "../db/database.js";
import type { HubMetrics } from "../metrics/hub-metrics.js";
import { federatedAverage, IncompatibleUpdateError, SafetensorsError } from "./fedavg/index.js";
import { failAggregation, finishRound, type RoundToAggregate } from "./rounds.js";

export interface AggregatorDeps {
  db: Database;
  artifacts: ArtifactDeps;
  log: Logger;
  metrics: Pick<HubMetrics, "aggregated" | "roundEnded">;
}

/**
 * Averages closed rounds, one at a time per job, off the event loop (FedAvg runs in a worker thread and
 * streams tensor chunks, so memory stays near the model's size whatever the number of trusts). The
 * result is stored as a hub artifact and the round moves on; a round asked twice is averaged once.
 */
export class Aggregator {
  private readonly running = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();

  constructor(private readonly deps: AggregatorDeps) {}

  /** Starts averaging a round (unless it already is); resolves when it is stored or failed. */
  aggregate(r: RoundToAggregate): Promise<void> {
    const key = `${r.jobId}:${r.round}`;
    let run = this.running.get(key);
    if (!run) {
      run = this.run(r)
        .catch((err: unknown) => this.deps.log.error({ err, jobId: r.jobId, round: r.round }, "aggregation failed unexpectedly; the round is retried at the next start"))
        .finally(() => this.running.delete(key));
      this.running.set(key, run);
    }
    return run;
  }

  /**
   * Removes what aggregations that never finished left in the scratch directory (a crash mid-average);
   * only files older than an hour, since other replicas may share the directory and be averaging now.
   */
  async removeLeftovers(): Promise<void> {
    const dir = this.deps.artifacts.store.scratchDir();
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.filter((n) => n.startsWith("fedavg-"))) {
      const file = path.join(dir, name);
      const age = Date.now() - (await stat(file).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 3_600_000) await rm(file, { force: true });
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled([...this.running.values()]);
  }

  /** Averages in a span of the round's trace (whichever replica, whenever): the trace of a round ends with its average. */
  private async run({ jobId, round }: RoundToAggregate): Promise<void> {
    const [row] = await this.deps.db.em().execute<{ trace_context: Record<string, string> }[]>("select trace_context from job_round where job_id = ? and round = ?", [jobId, round]);
    const parent = extractTraceContext(row?.trace_context, ROOT_CONTEXT);
    await withSpan("training.aggregate", parent, { attributes: { "flip.job_id": jobId, "flip.round": round } }, (span) => this.average(jobId, round, span));
  }

  private async average(jobId: string, round: number, span: Span): Promise<void> {
    const { db, artifacts, log, metrics } = this.deps;
    const updates = await db.em().execute<{ artifact_id: string; samples: string; code: string; size_bytes: string }[]>(
      `select u.artifact_id, u.samples::text, t.code, coalesce(a.size_bytes, 0)::text as size_bytes from job_update u join trust t on t.id = u.trust_id left join artifact a on a.id = u.artifact_id
       where u.job_id = ? and u.round = ? order by t.code`,
      [jobId, round],
    );
    span.setAttribute("flip.updates", updates.length);
    const started = Date.now();
    await mkdir(artifacts.store.scratchDir(), { recursive: true });
    const out = path.join(artifacts.store.scratchDir(), `fedavg-${jobId}-${round}-${process.pid}-${Date.now()}.safetensors`);
    try {
      const result = await federatedAverage(
        updates.map((u) => ({ path: artifacts.store.localPath(u.artifact_id), weight: Number(u.samples), label: u.code })),
        out,
        { signal: this.abort.signal },
      );
      const artifact = await adoptHubArtifact(artifacts, { purpose: "global-weights", actor: "system", file: out, sizeBytes: result.sizeBytes, sha256: result.sha256 });
      span.setAttribute("flip.size_bytes", result.sizeBytes);
      log.info({ jobId, round, trusts: updates.length, sizeBytes: result.sizeBytes, ms: Date.now() - started }, "round aggregated");
      metrics.aggregated(updates.reduce((sum, u) => sum + Number(u.size_bytes), 0), (Date.now() - started) / 1000);
      const roundStartedAt = await finishRound(db.em(), jobId, round, artifact.id, result.sizeBytes);
      if (roundStartedAt) metrics.roundEnded("aggregated", roundStartedAt);
    } catch (e) {
      await rm(out, { force: true });
      await rm(`${out}.part`, { force: true });
      if (this.abort.signal.aborted) return;
      if (e instanceof IncompatibleUpdateError || e instanceof SafetensorsError) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
        const roundStartedAt = await failAggregation(db.em(), jobId, round, e.message);
        if (roundStartedAt) metrics.roundEnded("failed", roundStartedAt);
        return;
      }
      throw e;
    }
  }
}

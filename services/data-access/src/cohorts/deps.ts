import type pg from "pg";
import type { Logger } from "@flip/shared/logging/logger.js";
import type { ReadOnlyExecutor } from "../execution/executor.js";
import type { TrustPolicy } from "../policy/policy.js";
import type { QueryGuard } from "./query-guard.js";

/** What the cohort operations need; passed in so tests can hand in real Postgres and their own policy. */
export interface CohortDeps {
  /** Runs researchers' SQL as the read-only reader role. */
  executor: ReadOnlyExecutor;
  /** The owner's connection: snapshots members from `omop` and owns `flip_local`, which the reader cannot see. */
  owner: pg.Pool;
  policy: TrustPolicy;
  /** The trust's own threshold T; policy and hub can only raise it. */
  threshold: number;
  /** Differencing rules and the per-project query budget for statistics queries. */
  guard: QueryGuard;
  log: Logger;
}

import { toBinary } from "@bufbuild/protobuf";
import { CohortQuerySchema as CohortQueryMessageSchema, type CohortQuery as CohortQueryMessage } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import type { Principal } from "../auth/principal.js";
import type { HubDeps } from "../rpc/hub-context.js";
import { COHORT_ANSWER_CHANNEL, reconcileCohortQuery } from "./answers.js";
import { visibleCohortQuery } from "./queries.js";
import { cohortQueryToProto } from "./to-proto.js";

/** How often a watch re-reads even without a notification (online/offline changes have none). */
const REFRESH_MS = 2_000;

/**
 * Yields the query's state now, then again whenever it changes (a trust answered, or went on- or
 * offline), until every trust has answered or `signal` aborts.
 */
export async function* watchCohortQuery(
  { db, config, metrics }: Pick<HubDeps, "db" | "config" | "metrics">,
  caller: Principal,
  queryId: string,
  signal: AbortSignal,
): AsyncGenerator<CohortQueryMessage> {
  // The query row never changes (only its answers do), so it is loaded and its visibility checked once.
  const query = await visibleCohortQuery(db.em(), caller, queryId);
  let wake: (() => void) | undefined;
  // A notice that lands while the loop is reading must not be lost: it marks the state dirty.
  let dirty = false;
  const unsubscribe = await db.notifier.subscribe(COHORT_ANSWER_CHANNEL, (id) => {
    if (id !== queryId) return;
    dirty = true;
    wake?.();
  });
  let last: string | undefined;
  try {
    while (!signal.aborted) {
      dirty = false;
      const em = db.em();
      await reconcileCohortQuery(em, queryId, metrics);
      const message = await cohortQueryToProto(em, query, config.offlineAfterMs);
      const fingerprint = Buffer.from(toBinary(CohortQueryMessageSchema, message)).toString("base64");
      if (fingerprint !== last) {
        last = fingerprint;
        yield message;
      }
      if (message.complete) return;
      if (dirty) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, REFRESH_MS);
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        };
        wake = done;
        signal.addEventListener("abort", done, { once: true });
        if (dirty) done();
      });
    }
  } finally {
    unsubscribe();
  }
}

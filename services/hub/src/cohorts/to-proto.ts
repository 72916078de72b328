import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { EntityManager } from "@mikro-orm/postgresql";
import { CohortQuerySchema as CohortQueryMessageSchema, TrustAnswerState, type CohortQuery as CohortQueryMessage } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { linkStatusOf } from "../trusts/to-proto.js";
import { LinkStatus } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { Trust } from "../trusts/entities.js";
import { columnsFromJson } from "./answers.js";
import { CohortAnswer, type AnswerStateName, type CohortQuery } from "./entities.js";
import { groupBy } from "../db/group-rows.js";

const STATE: Record<AnswerStateName, TrustAnswerState> = {
  pending: TrustAnswerState.PENDING,
  ok: TrustAnswerState.OK,
  suppressed: TrustAnswerState.SUPPRESSED,
  empty: TrustAnswerState.EMPTY,
  error: TrustAnswerState.ERROR,
};

/**
 * Queries with every trust's answer and the total over trusts that answered OK. A pending answer of a
 * trust whose gateway is not connected shows as OFFLINE (it will be answered when the trust reconnects).
 * Answers and trusts of all queries are loaded together: two queries for a whole page, not two per item.
 */
export async function cohortQueriesToProto(em: EntityManager, queries: readonly CohortQuery[], offlineAfterMs: number): Promise<CohortQueryMessage[]> {
  if (queries.length === 0) return [];
  const answers = await em.find(CohortAnswer, { queryId: { $in: queries.map((q) => q.id) } });
  const trustIds = [...new Set(answers.map((a) => a.trustId))];
  const trusts = trustIds.length ? await em.find(Trust, { id: { $in: trustIds } }) : [];
  const trustById = new Map(trusts.map((t) => [t.id, t]));
  const answersByQuery = groupBy(answers, (a) => a.queryId);
  return queries.map((q) => toMessage(q, answersByQuery.get(q.id) ?? [], trustById, offlineAfterMs));
}

/** One query as a message (see cohortQueriesToProto). */
export async function cohortQueryToProto(em: EntityManager, q: CohortQuery, offlineAfterMs: number): Promise<CohortQueryMessage> {
  const [message] = await cohortQueriesToProto(em, [q], offlineAfterMs);
  return message!;
}

function toMessage(q: CohortQuery, answers: readonly CohortAnswer[], trustById: ReadonlyMap<string, Trust>, offlineAfterMs: number): CohortQueryMessage {
  const total = answers.filter((a) => a.state === "ok").reduce((sum, a) => sum + a.recordCount, 0);
  return create(CohortQueryMessageSchema, {
    id: q.id,
    projectId: q.projectId,
    name: q.name,
    sql: q.sql,
    createdBy: q.createdBy,
    createdAt: timestampFromDate(q.createdAt),
    totalRecordCount: BigInt(total),
    complete: answers.every((a) => a.state !== "pending"),
    answers: answers
      .map((a) => {
        const trust = trustById.get(a.trustId);
        const offline = a.state === "pending" && trust !== undefined && linkStatusOf(trust, offlineAfterMs) !== LinkStatus.ONLINE;
        return {
          trustId: a.trustId,
          trustCode: trust?.code ?? "",
          state: offline ? TrustAnswerState.OFFLINE : STATE[a.state],
          recordCount: BigInt(a.recordCount),
          columns: columnsFromJson(a.columns),
          error: a.error ?? "",
          answeredAt: a.answeredAt ? timestampFromDate(a.answeredAt) : undefined,
          taskId: a.taskId,
          threshold: a.threshold,
        };
      })
      .sort((x, y) => x.trustCode.localeCompare(y.trustCode)),
  });
}

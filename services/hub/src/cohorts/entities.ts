import { defineEntity, p } from "@mikro-orm/core";
import type { JsonValue } from "@bufbuild/protobuf";

/** A cohort query as submitted; the SQL of record that every trust is sent. */
export const CohortQuerySchema = defineEntity({
  name: "CohortQuery",
  tableName: "cohort_query",
  properties: {
    id: p.uuid().primary().onCreate(() => crypto.randomUUID()),
    projectId: p.uuid(),
    name: p.string(),
    sql: p.text(),
    createdBy: p.string(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});
export class CohortQuery extends CohortQuerySchema.class {}
CohortQuerySchema.setClass(CohortQuery);

export const ANSWER_STATES = ["pending", "ok", "suppressed", "empty", "error"] as const;
export type AnswerStateName = (typeof ANSWER_STATES)[number];

/**
 * One trust's answer to a cohort query: aggregates only (record count and column summaries, already
 * suppressed at the trust). `error` is a redacted category, never the trust's raw message.
 */
export const CohortAnswerSchema = defineEntity({
  name: "CohortAnswer",
  tableName: "cohort_answer",
  properties: {
    queryId: p.uuid().primary(),
    trustId: p.uuid().primary(),
    taskId: p.uuid(),
    state: p.enum(ANSWER_STATES),
    recordCount: p.bigint("number"),
    columns: p.json<JsonValue>().nullable(),
    threshold: p.integer(),
    error: p.text().nullable(),
    answeredAt: p.datetime().nullable(),
  },
  primaryKeys: ["queryId", "trustId"],
});
export class CohortAnswer extends CohortAnswerSchema.class {}
CohortAnswerSchema.setClass(CohortAnswer);

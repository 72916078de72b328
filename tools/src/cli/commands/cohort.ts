import { existsSync, readFileSync } from "node:fs";
import { toJson } from "@bufbuild/protobuf";
import { CohortQuerySchema, CohortService, TrustAnswerState, TrustAnswerStateSchema, type CohortQuery, type TrustCohortAnswer } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { requireOption, stringOption, type CliCommand } from "../command.js";
import { table, valueLabel } from "../format.js";
import { createOnce } from "../training/retry-once.js";
import { oneId } from "./project.js";

const stateLabel = (a: TrustCohortAnswer) => valueLabel(TrustAnswerStateSchema, a.state, "TRUST_ANSWER_STATE_");

function countCell(a: TrustCohortAnswer): string {
  switch (a.state) {
    case TrustAnswerState.OK:
      return String(a.recordCount);
    case TrustAnswerState.SUPPRESSED:
      return `<${a.threshold || 10} (suppressed)`;
    case TrustAnswerState.EMPTY:
      return "0";
    case TrustAnswerState.ERROR:
      return a.error;
    default:
      return "-";
  }
}

export function describeCohortQuery(q: CohortQuery): string {
  return [
    `query ${q.id} "${q.name}" on project ${q.projectId}${q.complete ? "" : "  (waiting for trusts…)"}`,
    table(["TRUST", "STATE", "RECORDS"], q.answers.map((a) => [a.trustCode, stateLabel(a), countCell(a)])),
    `total (trusts that answered OK): ${q.totalRecordCount}`,
  ].join("\n");
}

/** --sql takes SQL text or a path to a .sql file. */
function readSql(arg: string): string {
  return existsSync(arg) ? readFileSync(arg, "utf8") : arg;
}

export const cohortCommands: CliCommand[] = [
  {
    path: ["cohort", "query"],
    summary: "Ask every trust how many patients match; prints each trust's answer as it arrives.",
    usage: "--project <id> --sql <SQL text or file> [--name <name>] [--no-wait]",
    options: { project: { type: "string" }, sql: { type: "string" }, name: { type: "string" }, "no-wait": { type: "boolean", default: false } },
    async run(ctx, args) {
      const client = ctx.client(CohortService);
      const submission = { projectId: requireOption(args, "project"), sql: readSql(requireOption(args, "sql")), name: stringOption(args, "name") };
      const { query } = await createOnce((idempotencyKey) => client.submitCohortQuery({ ...submission, idempotencyKey }), (e) => ctx.stderr.write(`the hub did not answer (${e.rawMessage}); retrying once with the same idempotency key\n`));
      if (!query) return 1;
      if (args.values["no-wait"]) {
        ctx.print(describeCohortQuery(query), { query: toJson(CohortQuerySchema, query) });
        return;
      }
      let last = query;
      const announced = new Set<string>();
      if (!ctx.json) ctx.stdout.write(`submitted query ${query.id} to ${query.answers.length} trusts\n`);
      for await (const { query: q } of client.watchCohortQuery({ queryId: query.id })) {
        if (!q) continue;
        last = q;
        if (ctx.json) continue;
        for (const a of q.answers) {
          const key = `${a.trustCode}:${a.state}`;
          if (a.state === TrustAnswerState.PENDING || announced.has(key)) continue;
          announced.add(key);
          ctx.stdout.write(`  ${a.trustCode}: ${stateLabel(a)} ${countCell(a)}\n`);
        }
      }
      ctx.print(describeCohortQuery(last), { query: toJson(CohortQuerySchema, last) });
      return undefined;
    },
  },
  {
    path: ["cohort", "get"],
    summary: "Show a cohort query with every trust's answer and the total.",
    usage: "<query id>",
    positionals: true,
    async run(ctx, args) {
      const { query } = await ctx.client(CohortService).getCohortQuery({ queryId: oneId(args.positionals, "query") });
      ctx.print(query ? describeCohortQuery(query) : "-", { query: query ? toJson(CohortQuerySchema, query) : null });
    },
  },
  {
    path: ["cohort", "list"],
    summary: "List a project's cohort queries, newest first.",
    usage: "--project <id>",
    options: { project: { type: "string" } },
    async run(ctx, args) {
      const { queries } = await ctx.client(CohortService).listCohortQueries({ projectId: requireOption(args, "project") });
      ctx.print(
        queries.length === 0 ? "no cohort queries" : table(["ID", "NAME", "COMPLETE", "TOTAL"], queries.map((q) => [q.id, q.name, q.complete ? "yes" : "no", String(q.totalRecordCount)])),
        { queries: queries.map((q) => toJson(CohortQuerySchema, q)) },
      );
    },
  },
];

import { toJson } from "@bufbuild/protobuf";
import { DecisionStateSchema } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { ActivityOutcome, ActivityOutcomeSchema, TrustActivitySchema, TrustService, type TrustActivity } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { TaskKindSchema, type TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { stringOption, UsageError, type CliCommand } from "../command.js";
import { oneTrust } from "./trust.js";
import { enumLabel, personLabel, table, when, valueLabel } from "../format.js";

/** The kinds `--kind` accepts, by their labels (cohort-query, training, …). */
const KINDS = new Map(TaskKindSchema.values.filter((v) => v.number !== 0).map((v) => [enumLabel(v.name, "TASK_KIND_"), v.number as TaskKind]));

function parseKinds(text: string): TaskKind[] {
  if (!text) return [];
  return text.split(",").map((label) => {
    const kind = KINDS.get(label.trim());
    if (kind === undefined) throw new UsageError(`--kind: "${label.trim()}" is not a kind of work; use one or more of ${[...KINDS.keys()].join(", ")}, separated by commas`);
    return kind;
  });
}

const outcomeLabel = (e: TrustActivity) => valueLabel(ActivityOutcomeSchema, e.outcome, "ACTIVITY_OUTCOME_");

/** What the work was beyond its kind, and what the trust reported: counts only, never data. */
function workAndResult(e: TrustActivity): { work: string; result: string } {
  const d = e.details;
  const done = e.outcome === ActivityOutcome.DONE;
  switch (d.case) {
    case "cohortQuery":
      return { work: "aggregates", result: done ? `${d.value.recordCount} records` : "" };
    case "freezeCohort":
      return { work: "approved cohort", result: done ? `${d.value.personCount} persons, ${d.value.studyCount} studies` : "" };
    case "training":
      return {
        work: d.value.stop ? `end of job (${d.value.modelName || "model deleted"})` : `round ${d.value.round} (${d.value.modelName || "model deleted"})`,
        result: done && !d.value.stop ? `${d.value.samples} samples` : "",
      };
    case "imagingImport":
      return { work: d.value.convertToNifti ? "with NIfTI" : "", result: done ? `${d.value.studiesImported} of ${d.value.studiesRequested} studies` : "" };
    case "imagingDelete":
      return { work: d.value.reason, result: done ? `${d.value.studiesDeleted} studies, ${d.value.imagesDeleted} images` : "" };
    default:
      return { work: "", result: "" };
  }
}

function decisionLabel(e: TrustActivity): string {
  const d = e.decision;
  if (!d) return "-";
  const state = valueLabel(DecisionStateSchema, d.state, "DECISION_STATE_");
  return `${state} by ${personLabel(d.decider, d.decidedBy || "-")} ${when(d.decidedAt)}`;
}

export const trustLedgerCommands: CliCommand[] = [
  {
    path: ["trust", "ledger"],
    summary: "What the hub sent a trust and what came of it, newest first: who asked, for which project, under which decision (that trust's Trust Admins and Admin).",
    usage: "<code|id> [--kind cohort-query,freeze-cohort,training,imaging-import,imaging-delete,echo] [--limit N]",
    positionals: true,
    options: { kind: { type: "string" }, limit: { type: "string" } },
    async run(ctx, args) {
      const trust = oneTrust(args.positionals);
      const limit = Number(stringOption(args, "limit", "100"));
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError("--limit must be 1 to 10000");
      const kinds = parseKinds(stringOption(args, "kind"));
      const entries: TrustActivity[] = [];
      let pageToken = "";
      do {
        const res = await ctx.client(TrustService).listTrustActivity({ trust, kinds, page: { pageSize: Math.min(500, limit - entries.length), pageToken } });
        entries.push(...res.entries);
        pageToken = res.page?.nextPageToken ?? "";
      } while (pageToken && entries.length < limit);
      ctx.print(
        entries.length === 0
          ? `nothing sent to ${trust}${kinds.length ? " of those kinds" : ""} yet`
          : table(
              ["REQUESTED", "KIND", "WORK", "PROJECT", "ASKED BY", "OUTCOME", "RESULT", "DECISION"],
              entries.map((e) => {
                const { work, result } = workAndResult(e);
                return [
                  when(e.requestedAt),
                  valueLabel(TaskKindSchema, e.kind, "TASK_KIND_"),
                  work || "-",
                  e.projectName || "-",
                  personLabel(e.requester, e.requestedBy || "-"),
                  outcomeLabel(e),
                  result || e.outcomeDetail || "-",
                  decisionLabel(e),
                ];
              }),
            ),
        { entries: entries.map((e) => toJson(TrustActivitySchema, e)) },
      );
    },
  },
];

/** Domain results as the contract's protobuf messages. */
import { create } from "@bufbuild/protobuf";
import {
  CohortOutcome,
  CohortQueryOutputSchema,
  ColumnSummarySchema,
  FreezeCohortOutputSchema,
  type CohortQueryOutput,
  type ColumnSummary,
  type FreezeCohortOutput,
} from "@flip/gen/flip/link/v1/tasks_pb.js";
import type { FrozenCohortCounts } from "./cohorts/freeze.js";
import type { CohortStatistics, ColumnStatistics } from "./statistics/summarize-cohort.js";

export function cohortQueryOutput(stats: CohortStatistics): CohortQueryOutput {
  if (stats.outcome === "suppressed") {
    return create(CohortQueryOutputSchema, { outcome: CohortOutcome.SUPPRESSED, recordCount: 0n, columns: [], threshold: stats.threshold });
  }
  return create(CohortQueryOutputSchema, {
    outcome: CohortOutcome.OK,
    recordCount: BigInt(stats.recordCount),
    columns: stats.columns.map(columnSummary),
    threshold: stats.threshold,
  });
}

/** A withheld column is listed by name with no summary. */
function columnSummary(c: ColumnStatistics): ColumnSummary {
  switch (c.kind) {
    case "categorical":
      return create(ColumnSummarySchema, {
        name: c.name,
        summary: {
          case: "categorical",
          value: {
            categories: c.categories.map((cat) => ({ value: cat.value, count: BigInt(cat.count) })),
            otherCount: BigInt(c.otherCount),
            hasSuppressed: c.hasSuppressed,
          },
        },
      });
    case "numeric":
      return create(ColumnSummarySchema, {
        name: c.name,
        summary: { case: "numeric", value: c.summary ? { ...c.summary, count: BigInt(c.summary.count), suppressed: false } : { suppressed: true } },
      });
    case "withheld":
      return create(ColumnSummarySchema, { name: c.name });
  }
}

export function freezeCohortOutput(counts: FrozenCohortCounts): FreezeCohortOutput {
  return create(FreezeCohortOutputSchema, {
    personCount: BigInt(counts.personCount),
    studyCount: BigInt(counts.studyCount),
    suppressed: counts.suppressed,
    querySha256: counts.querySha256,
  });
}

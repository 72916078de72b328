import { Link } from "react-router";
import { JobState, type Job } from "@flip/gen/flip/hub/v1/training_pb.js";
import { DataTable, type Column } from "../../ui/data-table.js";
import { formatTime, personLabel } from "../../ui/format.js";
import { JobStateBadge, jobKindLabel, ordinal } from "./job-labels.js";

/** Jobs, one row each, newest first as the hub lists them; `withModel` adds the model's column (for lists across models). */
export function JobsTable({ jobs, caption, empty, withModel }: { jobs: Job[]; caption: string; empty: string; withModel: boolean }) {
  const columns: Column<Job>[] = [
    {
      header: "Job",
      cell: (j) => (
        <Link to={`/jobs/${j.id}`} aria-label={`Job ${j.id}`}>
          <code>{j.id.slice(0, 8)}</code>
        </Link>
      ),
      width: "7rem",
    },
    ...(withModel ? [{ header: "Model", cell: (j: Job) => <Link to={`/models/${j.modelId}`}>{j.modelName || j.modelId}</Link>, width: "18%" }] : []),
    { header: "Kind", cell: (j) => jobKindLabel(j.kind), width: "7rem" },
    {
      header: "State",
      cell: (j) => (
        <>
          <JobStateBadge state={j.state} />
          {j.state === JobState.QUEUED && j.queuePosition > 0 ? <span className="training-aside">{ordinal(j.queuePosition)} in queue</span> : null}
        </>
      ),
      width: "12rem",
    },
    {
      header: "Round",
      cell: (j) => (j.state === JobState.QUEUED || j.currentRound === 0 ? `— of ${j.rounds}` : `${j.currentRound} of ${j.rounds}`),
      numeric: true,
      width: "6.5rem",
    },
    { header: "Trusts", cell: (j) => j.participants.map((p) => p.trustCode).join(", ") || "—", width: "10%" },
    { header: "Created by", cell: (j) => personLabel(j.creator, j.createdBy), width: "18%" },
    { header: "Created", cell: (j) => formatTime(j.createdAt), width: "10rem" },
  ];
  return <DataTable caption={caption} columns={columns} rows={jobs} rowKey={(j) => j.id} empty={empty} />;
}

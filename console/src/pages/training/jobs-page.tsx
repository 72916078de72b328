import { useState } from "react";
import { JobService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { useClient } from "../../session/session-context.js";
import { ErrorMessage, Loading, Page, Panel } from "../../ui/page.js";
import { useLoad } from "../../ui/use-load.js";
import { isEndedJob } from "./job-labels.js";
import { JobsTable } from "./jobs-table.js";
import { useEvery } from "../../ui/use-every.js";
import "./training.css";

const PAGE = 50;

/** Every training job the user may see (one ListJobs call), kept current while any of them is live. */
export function JobsPage() {
  const jobs = useClient(JobService);
  const [limit, setLimit] = useState(PAGE);
  const list = useLoad((signal) => jobs.listJobs({ page: { pageSize: limit } }, { signal }), [limit]);
  const live = list.data?.jobs.some((j) => !isEndedJob(j.state)) ?? false;
  useEvery(5_000, list.reload, live && !list.loading);
  return (
    <Page title="Training jobs" subtitle="Federated training and evaluation jobs of the projects you can see, newest first.">
      <Panel title="Jobs">
        <ErrorMessage error={list.error} prefix="Could not list the jobs" />
        {list.data ? (
          <>
            <JobsTable jobs={list.data.jobs} caption="Training jobs" empty="No jobs yet. Start one from a model's page." withModel />
            {list.data.page?.nextPageToken && limit < 500 ? (
              <p>
                <button type="button" className="button button-small" disabled={list.loading} onClick={() => setLimit((l) => Math.min(500, l + PAGE))}>
                  Show more jobs
                </button>
              </p>
            ) : null}
          </>
        ) : list.error ? null : (
          <Loading label="Loading jobs…" minHeight="12rem" />
        )}
      </Panel>
    </Page>
  );
}

import { JobService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { useClient } from "../../session/session-context.js";
import { ErrorMessage, Loading, Page, Panel } from "../../ui/page.js";
import { ShowMoreButton, useShowMore } from "../../ui/show-more.js";
import { isEndedJob } from "./job-labels.js";
import { JobsTable } from "./jobs-table.js";
import { useEvery } from "../../ui/use-every.js";
import "./training.css";

const PAGE = 50;

/** Every training job the user may see (the newest 50, grown by "Show more"), kept current while any of them is live. */
export function JobsPage() {
  const jobs = useClient(JobService);
  const list = useShowMore(
    async (page, signal) => {
      const res = await jobs.listJobs({ page }, { signal });
      return { rows: res.jobs, nextPageToken: res.page?.nextPageToken ?? "" };
    },
    [],
    PAGE,
  );
  const live = list.rows?.some((j) => !isEndedJob(j.state)) ?? false;
  useEvery(5_000, list.reload, live && !list.loading);
  return (
    <Page title="Training jobs" subtitle="Federated training and evaluation jobs of the projects you can see, newest first.">
      <Panel title="Jobs">
        <ErrorMessage error={list.error} prefix="Could not list the jobs" />
        {list.rows ? (
          <>
            <JobsTable jobs={list.rows} caption="Training jobs" empty="No jobs yet. Start one from a model's page." withModel />
            <ShowMoreButton list={list} label="Show more jobs" />
          </>
        ) : list.error ? null : (
          <Loading label="Loading jobs…" minHeight="12rem" />
        )}
      </Panel>
    </Page>
  );
}

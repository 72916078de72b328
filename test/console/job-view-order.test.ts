/**
 * The job page hears of a job from its live stream and from reads; a read answered late must not take the
 * page back (it once showed a completed job as running again until the next read).
 */
import test from "ava";
import { create } from "@bufbuild/protobuf";
import { JobRoundSchema, JobSchema, JobState, type Job } from "@flip/gen/flip/hub/v1/training_pb.js";
import { laterJobView } from "../../console/src/pages/training/job-view-order.js";

const ID = "9a4c2f0e-0000-4000-8000-000000000001";
const job = (state: JobState, currentRound: number, rounds: string[]): Job =>
  create(JobSchema, { id: ID, state, rounds: 3, currentRound, roundHistory: rounds.map((s, i) => create(JobRoundSchema, { round: i + 1, state: s })) });

test("a read answered after the stream told of the end does not show the job running again", (t) => {
  const completed = job(JobState.COMPLETED, 3, ["aggregated", "aggregated", "aggregated"]);
  const staleRead = job(JobState.RUNNING, 3, ["aggregated", "aggregated", "open"]);
  t.is(laterJobView(completed, staleRead), completed);
  t.is(laterJobView(staleRead, completed), completed, "the end itself replaces a running view");
});

test("within a run, an older round or an unsettled round is older; a later one replaces what is shown", (t) => {
  const round2 = job(JobState.RUNNING, 2, ["aggregated", "open"]);
  const round2Settled = job(JobState.RUNNING, 2, ["aggregated", "aggregated"]);
  const round3 = job(JobState.RUNNING, 3, ["aggregated", "aggregated", "open"]);
  t.is(laterJobView(round3, round2), round3);
  t.is(laterJobView(round2Settled, round2), round2Settled);
  t.is(laterJobView(round2, round2Settled), round2Settled);
  t.is(laterJobView(job(JobState.QUEUED, 0, []), round2), round2);
  t.is(laterJobView(round2, job(JobState.QUEUED, 0, [])), round2, "a running job is never shown queued again");
});

test("a view as far along as the shown one replaces it (participants and queue positions change within a round); the first view is taken as it is", (t) => {
  const shown = job(JobState.QUEUED, 0, []);
  const moved = create(JobSchema, { ...shown, queuePosition: 1 });
  t.is(laterJobView(shown, moved), moved);
  t.is(laterJobView(undefined, shown), shown);
  const other = create(JobSchema, { ...shown, id: "9a4c2f0e-0000-4000-8000-000000000002" });
  t.is(laterJobView(job(JobState.COMPLETED, 3, []), other), other, "another job's view is not compared with this one's");
});

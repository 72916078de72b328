import { JobState, type Job } from "@flip/gen/flip/hub/v1/training_pb.js";

const STAGE: Record<JobState, number> = {
  [JobState.UNSPECIFIED]: 0,
  [JobState.QUEUED]: 1,
  [JobState.RUNNING]: 2,
  [JobState.COMPLETED]: 3,
  [JobState.FAILED]: 3,
  [JobState.ABORTED]: 3,
};

/** How far a job has got, compared left to right: queued, running or ended; its round; rounds on record; rounds settled. */
function progress(j: Job): number[] {
  return [STAGE[j.state], j.currentRound, j.roundHistory.length, j.roundHistory.filter((r) => r.state === "aggregated" || r.state === "failed").length];
}

/**
 * The view of a job to show, given the one shown and one just received. A job only moves forward, but the
 * page hears of it two ways (its live stream and reads of the job) and a read sent before the job moved can
 * be answered after the stream told of the move: such a read is older than what is shown and is dropped,
 * so an ended job never shows as running again. A view as far along as the shown one replaces it.
 */
export function laterJobView(shown: Job | undefined, received: Job): Job {
  if (!shown || shown.id !== received.id) return received;
  const [a, b] = [progress(shown), progress(received)];
  for (let i = 0; i < a.length; i++) {
    if (b[i]! !== a[i]!) return b[i]! > a[i]! ? received : shown;
  }
  return received;
}

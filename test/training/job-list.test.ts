import test from "ava";
import { AdminService } from "@flip/gen/flip/hub/v1/admin_pb.js";
import { JobService, JobState, ModelService, ParticipantState } from "@flip/gen/flip/hub/v1/training_pb.js";
import { countQueries } from "@flip/shared/testing/query-counter.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { approvedProject } from "../support/training.js";
import { startTestHub } from "../support/test-hub.js";

test("a page of jobs costs the same few statements for 1 job as for 10, and each listed job is complete", async (t) => {
  const hub = await startTestHub();
  try {
    const north = await hub.registerTrust("north");
    const projectId = await approvedProject(hub, [north.id]);
    const admin = await hub.firstAdmin();
    const models = hub.client(ModelService, admin.token);
    const jobs = hub.client(JobService, admin.token);

    // Ten jobs, one model each (a model has one live job at a time): no gateway is linked, so the
    // started ones wait in round 1; two are aborted, and the newest stays queued in deployment mode.
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      if (i === 9) await hub.client(AdminService, admin.token).setDeploymentMode({ enabled: true });
      const { model } = await models.createModel({ projectId, name: `model ${i}`, image: "flip/train-numpy:1" });
      const { job } = await jobs.createJob({ modelId: model!.id, trusts: ["north"], rounds: 2, roundTimeoutSeconds: 600 });
      ids.push(job!.id);
      if (i < 9) await eventually(async () => (await jobs.getJob({ jobId: job!.id })).job!, (j) => j.state === JobState.RUNNING && j.roundHistory.length === 1, { what: `job ${i} starting` });
    }
    for (const id of ids.slice(0, 2)) await jobs.abortJob({ jobId: id, reason: "test" });

    // The hub's sweeps query now and then (every 5 s); the fewest of a few calls is the call's own cost.
    const cost = async (pageSize: number) => {
      let fewest = Infinity;
      let listed;
      for (let i = 0; i < 3; i++) {
        const { result, queries } = await countQueries(() => jobs.listJobs({ page: { pageSize } }));
        fewest = Math.min(fewest, queries);
        listed = result.jobs;
      }
      return { queries: fewest, listed: listed! };
    };
    const one = await cost(1);
    const ten = await cost(10);
    t.is(one.listed.length, 1);
    t.is(ten.listed.length, 10);
    t.log(`statements per ListJobs call: ${one.queries} for 1 job, ${ten.queries} for 10`);
    t.is(ten.queries, one.queries, "the statement count does not grow with the page");
    t.true(one.queries <= 10, `a page costs ${one.queries} statements`);

    t.deepEqual(
      ten.listed.map((j) => j.id),
      [...ids].reverse(),
      "newest first",
    );
    for (const [i, j] of [...ten.listed].reverse().entries()) {
      t.is(j.modelName, `model ${i}`);
      t.is(j.creator?.email, "admin@hub.test");
      t.is(j.participants.length, 1);
      t.is(j.participants[0]!.trustCode, "north");
      if (i < 2) {
        t.is(j.state, JobState.ABORTED);
        t.is(j.participants[0]!.state, ParticipantState.DONE);
        t.like(j.roundHistory, [{ round: 1, state: "failed" }]);
      } else if (i < 9) {
        t.is(j.state, JobState.RUNNING);
        t.is(j.currentRound, 1);
        t.is(j.participants[0]!.state, ParticipantState.WAITING);
        t.like(j.roundHistory, [{ round: 1, state: "open", updates: 0 }]);
        t.is(j.queuePosition, 0);
      } else {
        t.is(j.state, JobState.QUEUED);
        t.is(j.queuePosition, 1);
        t.deepEqual(j.roundHistory, []);
      }
    }
    t.deepEqual(one.listed[0], ten.listed[0], "a job reads the same on a page of one as on a page of ten");
    t.deepEqual((await jobs.getJob({ jobId: ids[5]! })).job, ten.listed[4], "and as GetJob shows it");
    await hub.client(AdminService, admin.token).setDeploymentMode({ enabled: false });
  } finally {
    await hub.close();
  }
});

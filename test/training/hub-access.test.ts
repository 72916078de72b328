import test from "ava";
import { Code } from "@connectrpc/connect";
import { JobService, ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { connectErrorOf } from "@flip/shared/testing/connect-error-of.js";
import { approvedProject } from "../support/training.js";
import { startTestHub } from "../support/test-hub.js";

test("people outside a project neither see nor run its models and jobs; a trust's admin sees the jobs at their trust but cannot abort them", async (t) => {
  const hub = await startTestHub();
  try {
    const north = await hub.registerTrust("north");
    // Created before the first Admin (the bootstrap token stops working then); the Admin runs the job.
    const projectId = await approvedProject(hub, [north.id]);
    const admin = await hub.firstAdmin();
    const outsider = await hub.user(admin.token, "outsider@hub.test", [{ role: Role.RESEARCHER }]);
    const officer = await hub.user(admin.token, "officer@hub.test", [{ role: Role.TRUST_ADMIN, trust: north.id }]);
    const { model } = await hub.client(ModelService, admin.token).createModel({ projectId, name: "m", image: "flip/train-numpy:1" });
    // No gateway is linked: the job stays in round 1, waiting for north.
    const { job } = await hub.client(JobService, admin.token).createJob({ modelId: model!.id, trusts: ["north"], rounds: 1, roundTimeoutSeconds: 60 });

    const theirs = { models: hub.client(ModelService, outsider.token), jobs: hub.client(JobService, outsider.token) };
    t.is((await connectErrorOf(theirs.jobs.getJob({ jobId: job!.id }))).code, Code.NotFound);
    t.is((await connectErrorOf(theirs.models.getModel({ modelId: model!.id }))).code, Code.NotFound);
    t.is((await connectErrorOf(theirs.models.createModel({ projectId, name: "x", image: "flip/train-numpy:1" }))).code, Code.NotFound);
    t.is((await connectErrorOf(theirs.jobs.createJob({ modelId: model!.id, trusts: ["north"] }))).code, Code.NotFound);
    t.is((await connectErrorOf(theirs.jobs.abortJob({ jobId: job!.id }))).code, Code.NotFound);
    t.is((await connectErrorOf(theirs.jobs.downloadWeights({ jobId: job!.id })[Symbol.asyncIterator]().next())).code, Code.NotFound);
    t.false((await theirs.jobs.listJobs({})).jobs.some((j) => j.id === job!.id));

    const officers = hub.client(JobService, officer.token);
    t.true((await officers.listJobs({})).jobs.some((j) => j.id === job!.id));
    t.is((await officers.getJob({ jobId: job!.id })).job!.id, job!.id);
    t.is((await connectErrorOf(officers.abortJob({ jobId: job!.id }))).code, Code.PermissionDenied);
    await hub.client(JobService, admin.token).abortJob({ jobId: job!.id });
  } finally {
    await hub.close();
  }
});

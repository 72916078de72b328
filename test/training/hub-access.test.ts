import test from "ava";
import { Code } from "@connectrpc/connect";
import { JobService, ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { connectErrorOf } from "@flip/shared/testing/connect-error-of.js";
import { approvedProject } from "../support/training.js";
import { BOOTSTRAP_TOKEN, startTestHub } from "../support/test-hub.js";

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

test("models and jobs name the user who owns or created them, in gets as in lists; the bootstrap admin is no user", async (t) => {
  const hub = await startTestHub();
  try {
    const north = await hub.registerTrust("north");
    const projectId = await approvedProject(hub, [north.id]);
    // The bootstrap token works until the first Admin exists.
    const { model: bootstrapModel } = await hub.client(ModelService, BOOTSTRAP_TOKEN).createModel({ projectId, name: "early", image: "flip/train-numpy:1" });
    const admin = await hub.firstAdmin();
    const models = hub.client(ModelService, admin.token);
    const jobs = hub.client(JobService, admin.token);
    const adminPerson = { userId: admin.id, email: "admin@hub.test", name: "Admin" };

    const { model } = await models.createModel({ projectId, name: "m", image: "flip/train-numpy:1" });
    t.like(model!.owner, adminPerson);
    t.like((await models.getModel({ modelId: model!.id })).model!.owner, adminPerson);
    const listed = (await models.listModels({ projectId })).models;
    t.like(listed.find((m) => m.id === model!.id)!.owner, adminPerson);
    const early = listed.find((m) => m.id === bootstrapModel!.id)!;
    t.is(early.ownerId, "bootstrap-admin");
    t.is(early.owner, undefined);

    const { job } = await jobs.createJob({ modelId: model!.id, trusts: ["north"], rounds: 1, roundTimeoutSeconds: 60 });
    t.is(job!.createdBy, admin.id, "the id stays where it was");
    t.like(job!.creator, adminPerson);
    t.like((await jobs.getJob({ jobId: job!.id })).job!.creator, adminPerson);
    t.like((await jobs.listJobs({ modelId: model!.id })).jobs[0]!.creator, adminPerson);
    await jobs.abortJob({ jobId: job!.id });
  } finally {
    await hub.close();
  }
});

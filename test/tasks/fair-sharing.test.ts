/**
 * Fair sharing of a trust's cohort query slots, with a real hub and the test playing the trust's
 * gateway by hand: it has one cohort slot and answers one offer at a time, so the order of offers is
 * exactly the order the hub chose.
 */
import anyTest, { type TestFn } from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { CohortService } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { CohortOutcome, TaskKind } from "@flip/gen/flip/link/v1/tasks_pb.js";
import { RawLink } from "../support/raw-link.js";
import { startTestHub, type TestHub } from "../support/test-hub.js";

interface Ctx {
  h: TestHub;
  gateway: RawLink;
  tokens: Record<"alice" | "bob" | "carol" | "dave", string>;
}
const test = anyTest as TestFn<Ctx>;

const SQL = "select person_id from omop.person";
const LIMIT = 3;

test.before(async (t) => {
  const h = await startTestHub({ FLIP_MAX_COHORT_QUERIES_PER_USER: String(LIMIT) });
  const { apiKey } = await h.registerTrust("fair");
  const admin = (await h.firstAdmin()).token;
  const tokens = {} as Ctx["tokens"];
  for (const name of ["alice", "bob", "carol", "dave"] as const) tokens[name] = (await h.user(admin, `${name}@uni.test`, [{ role: Role.RESEARCHER }])).token;
  const gateway = RawLink.open(h.hub.url, apiKey, { trustCode: "fair", hello: { capacity: [{ kind: TaskKind.COHORT_QUERY, maxConcurrent: 1 }] } });
  await gateway.next("welcome");
  t.context = { h, gateway, tokens };
});
test.after.always(async (t) => {
  t.context.gateway?.close();
  await t.context.h?.close();
});

async function submit(t: { context: Ctx }, who: keyof Ctx["tokens"], projectId: string): Promise<string> {
  const { query } = await t.context.h.client(CohortService, t.context.tokens[who]).submitCohortQuery({ projectId, sql: SQL });
  return query!.id;
}

async function projectOf(t: { context: Ctx }, who: keyof Ctx["tokens"]): Promise<string> {
  const { project } = await t.context.h.client(ProjectService, t.context.tokens[who]).createProject({ name: `${who}'s study` });
  return project!.id;
}

/** Takes the next offer, answers it, and returns the cohort query it was for. */
async function answerNextOffer(gateway: RawLink): Promise<string> {
  const offer = await gateway.next("offer", 30_000);
  gateway.send({ case: "ack", value: { taskId: offer.taskId, attempt: offer.attempt } });
  gateway.send({
    case: "result",
    value: { taskId: offer.taskId, attempt: offer.attempt, outcome: { case: "output", value: { kind: { case: "cohortQuery", value: { outcome: CohortOutcome.OK, recordCount: 20n, threshold: 10 } } } } },
  });
  await gateway.next("resultAck", 30_000, (a) => a.taskId === offer.taskId);
  return offer.spec?.kind.case === "cohortQuery" ? offer.spec.kind.value.queryId : "not a cohort query";
}

test.serial("a researcher's one query is offered before another researcher's older backlog", async (t) => {
  const [alicesProject, bobsProject] = [await projectOf(t, "alice"), await projectOf(t, "bob")];
  const alice = [await submit(t, "alice", alicesProject), await submit(t, "alice", alicesProject), await submit(t, "alice", alicesProject)];
  const bob = await submit(t, "bob", bobsProject);
  const offered: string[] = [];
  for (let i = 0; i < 4; i++) offered.push(await answerNextOffer(t.context.gateway));
  t.deepEqual(offered, [alice[0], bob, alice[1], alice[2]]);
});

test.serial("a researcher with the most queries in flight is refused with ResourceExhausted until one is answered; others are not held back", async (t) => {
  const [carolsProject, davesProject] = [await projectOf(t, "carol"), await projectOf(t, "dave")];
  const carol: string[] = [];
  for (let i = 0; i < LIMIT; i++) carol.push(await submit(t, "carol", carolsProject));
  const refused = ConnectError.from(await t.throwsAsync(submit(t, "carol", carolsProject)));
  t.is(Code[refused.code], Code[Code.ResourceExhausted]);
  t.regex(refused.rawMessage, new RegExp(`already have ${LIMIT} cohort queries waiting for answers .* wait for one of them to be answered`));
  await t.notThrowsAsync(submit(t, "dave", davesProject), "the limit is per researcher");
  t.is(await answerNextOffer(t.context.gateway), carol[0]);
  await t.notThrowsAsync(submit(t, "carol", carolsProject), "an answered query frees its place");
});

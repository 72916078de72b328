import anyTest, { type TestFn } from "ava";
import { randomUUID } from "node:crypto";
import { createLogger } from "@flip/shared/logging/logger.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { TrustAnswerState } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { openDatabase, type Database } from "../db/database.js";
import { countQueries } from "@flip/shared/testing/query-counter.js";
import { Project } from "../projects/entities.js";
import { Trust } from "../trusts/entities.js";
import { CohortAnswer, CohortQuery } from "./entities.js";
import { cohortQueriesToProto, cohortQueryToProto } from "./to-proto.js";

interface Ctx {
  tdb: TestDatabase;
  db: Database;
  queryIds: string[];
}
const test = anyTest as TestFn<Ctx>;

const QUERIES = 6;
const OFFLINE_AFTER_MS = 60_000;

test.before(async (t) => {
  const tdb = await createTestDatabase("cohort_to_proto");
  const db = await openDatabase(tdb.url, createLogger({ service: "test", level: "silent" }));
  const em = db.em();
  const trusts = ["north", "south", "east"].map((code) =>
    em.create(Trust, { name: `Trust ${code}`, code, region: "uk", keyId: `key-${code}`, keyHash: "x", disabledAt: null, lastSeenAt: new Date(), health: null }),
  );
  const project = em.create(Project, { name: "cohorts", description: "", ownerId: "owner", status: "approved", deletedAt: null, latestQueryId: null });
  await em.flush();
  const queries = Array.from({ length: QUERIES }, (_, i) =>
    em.create(CohortQuery, { projectId: project.id, name: `query ${i}`, sql: "select person_id from person", createdBy: "owner", createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)) }),
  );
  await em.flush();
  queries.forEach((q, i) => {
    // Each query has its own answers and counts, so mixing them up between queries would show.
    trusts.slice(0, 1 + (i % trusts.length)).forEach((trust, j) => {
      em.create(CohortAnswer, {
        queryId: q.id,
        trustId: trust.id,
        taskId: randomUUID(),
        state: "ok",
        recordCount: 100 * i + j,
        columns: null,
        threshold: 10,
        error: null,
        answeredAt: new Date(),
      });
    });
  });
  await em.flush();
  t.context = { tdb, db, queryIds: queries.map((q) => q.id) };
});

test.after.always(async (t) => {
  await t.context.db?.close();
  await t.context.tdb?.drop();
});

// Serial: the query counter counts every query of the process.
test.serial("a page of cohort queries is loaded with the same few queries whatever its size, and each carries its own answers", async (t) => {
  const em = t.context.db.em();
  const queries = await em.find(CohortQuery, { id: { $in: t.context.queryIds } }, { orderBy: { createdAt: "asc" } });
  const one = await countQueries(() => cohortQueriesToProto(em, queries.slice(0, 1), OFFLINE_AFTER_MS));
  const page = await countQueries(() => cohortQueriesToProto(em, queries, OFFLINE_AFTER_MS));
  t.is(page.queries, one.queries, "listing six queries takes no more queries than listing one");
  t.true(page.queries <= 2);

  for (const [i, message] of page.result.entries()) {
    t.deepEqual(message, await cohortQueryToProto(t.context.db.em(), queries[i]!, OFFLINE_AFTER_MS));
    const answers = 1 + (i % 3);
    t.is(message.answers.length, answers);
    t.true(message.answers.every((a) => a.state === TrustAnswerState.OK));
    t.is(message.totalRecordCount, BigInt(Array.from({ length: answers }, (_, j) => 100 * i + j).reduce((a, b) => a + b, 0)));
  }
});

test.serial("an empty page costs no query", async (t) => {
  const { result, queries } = await countQueries(() => cohortQueriesToProto(t.context.db.em(), [], OFFLINE_AFTER_MS));
  t.deepEqual(result, []);
  t.is(queries, 0);
});

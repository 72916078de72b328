import anyTest, { type TestFn } from "ava";
import { createLogger } from "@flip/shared/logging/logger.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { openDatabase, type Database } from "../db/database.js";
import { countQueries } from "@flip/shared/testing/query-counter.js";
import { Trust } from "../trusts/entities.js";
import { Project, ProjectMember, ProjectTrust } from "./entities.js";
import { projectsToProto, projectToProto } from "./to-proto.js";

interface Ctx {
  tdb: TestDatabase;
  db: Database;
  projectIds: string[];
}
const test = anyTest as TestFn<Ctx>;

const PROJECTS = 6;

test.before(async (t) => {
  const tdb = await createTestDatabase("project_to_proto");
  const db = await openDatabase(tdb.url, createLogger({ service: "test", level: "silent" }));
  const em = db.em();
  const trusts = ["north", "south", "east"].map((code) =>
    em.create(Trust, { name: `Trust ${code}`, code, region: "uk", keyId: `key-${code}`, keyHash: "x", disabledAt: null, lastSeenAt: null, health: null }),
  );
  const projects = Array.from({ length: PROJECTS }, (_, i) =>
    em.create(Project, { name: `project ${i}`, description: "", ownerId: "owner", status: "staged", deletedAt: null, latestQueryId: null }),
  );
  await em.flush();
  projects.forEach((p, i) => {
    // Each project gets its own members and decisions, so mixing them up between projects would show.
    for (let m = 0; m <= i % 3; m++) em.create(ProjectMember, { projectId: p.id, userId: `user-${i}-${m}`, addedAt: new Date(Date.UTC(2026, 0, 1, 0, m)) });
    for (const trust of trusts.slice(0, 1 + (i % trusts.length))) {
      em.create(ProjectTrust, {
        projectId: p.id,
        trustId: trust.id,
        state: i % 2 ? "approved" : "pending",
        decidedAs: null,
        decidedBy: null,
        decidedAt: null,
        reason: null,
        freezeState: "not_requested",
        freezeTaskId: null,
        frozenPersonCount: null,
      });
    }
  });
  await em.flush();
  t.context = { tdb, db, projectIds: projects.map((p) => p.id) };
});

test.after.always(async (t) => {
  await t.context.db?.close();
  await t.context.tdb?.drop();
});

// Serial: the query counter counts every query of the process.
test.serial("a page of projects is loaded with the same few queries whatever its size, and each carries its own members and decisions", async (t) => {
  const em = t.context.db.em();
  const projects = await em.find(Project, { id: { $in: t.context.projectIds } }, { orderBy: { name: "asc" } });
  const one = await countQueries(() => projectsToProto(em, projects.slice(0, 1)));
  const page = await countQueries(() => projectsToProto(em, projects));
  t.is(page.queries, one.queries, "listing six projects takes no more queries than listing one");
  t.true(page.queries <= 3);

  for (const [i, message] of page.result.entries()) {
    const alone = await projectToProto(t.context.db.em(), projects[i]!);
    t.deepEqual(message, alone);
    t.deepEqual(message.memberIds, Array.from({ length: 1 + (i % 3) }, (_, m) => `user-${i}-${m}`));
    t.deepEqual(
      message.decisions.map((d) => d.trustCode),
      ["north", "south", "east"].slice(0, 1 + (i % 3)).sort(),
    );
  }
});

test.serial("an empty page costs no query", async (t) => {
  const { result, queries } = await countQueries(() => projectsToProto(t.context.db.em(), []));
  t.deepEqual(result, []);
  t.is(queries, 0);
});

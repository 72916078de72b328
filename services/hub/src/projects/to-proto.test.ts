import anyTest, { type TestFn } from "ava";
import { createLogger } from "@flip/shared/logging/logger.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { openDatabase, type Database } from "../db/database.js";
import { countQueries } from "@flip/shared/testing/query-counter.js";
import { User } from "../identity/entities.js";
import { Trust } from "../trusts/entities.js";
import { Project, ProjectMember, ProjectTrust } from "./entities.js";
import { projectsToProto, projectToProto } from "./to-proto.js";

interface Ctx {
  tdb: TestDatabase;
  db: Database;
  projectIds: string[];
  owner: User;
  members: User[];
  decider: User;
}
const test = anyTest as TestFn<Ctx>;

const PROJECTS = 6;
/** A member whose user no longer exists. */
const GONE = "00000000-0000-4000-8000-000000000000";

test.before(async (t) => {
  const tdb = await createTestDatabase("project_to_proto");
  const db = await openDatabase(tdb.url, createLogger({ service: "test", level: "silent" }));
  const em = db.em();
  const trusts = ["north", "south", "east"].map((code) =>
    em.create(Trust, { name: `Trust ${code}`, code, region: "uk", keyId: `key-${code}`, keyHash: "x", disabledAt: null, lastSeenAt: null, health: null }),
  );
  const user = (name: string) =>
    em.create(User, {
      email: `${name}@uni.test`,
      emailKey: `${name}@uni.test`,
      name: name[0]!.toUpperCase() + name.slice(1),
      passwordHash: null,
      totpSecret: null,
      totpPendingSecret: null,
      totpEnrolledAt: null,
      totpLastStep: null,
      totpRequired: false,
      oidcIssuer: null,
      oidcSubject: null,
      disabledAt: null,
    });
  const owner = user("olivia");
  const decider = user("nora");
  const members = Array.from({ length: PROJECTS }, (_, i) => user(`member${i}`));
  await em.flush();
  const projects = Array.from({ length: PROJECTS }, (_, i) =>
    // The last project was made with the bootstrap token: its owner is no user.
    em.create(Project, { name: `project ${i}`, description: "", ownerId: i === PROJECTS - 1 ? "bootstrap-admin" : owner.id, status: "staged", deletedAt: null, latestQueryId: null }),
  );
  await em.flush();
  projects.forEach((p, i) => {
    // Each project gets its own members and decisions, so mixing them up between projects would show.
    for (const [m, userId] of memberIdsOf(i, members).entries()) em.create(ProjectMember, { projectId: p.id, userId, addedAt: new Date(Date.UTC(2026, 0, 1, 0, m)) });
    for (const [k, trust] of trusts.slice(0, 1 + (i % trusts.length)).entries()) {
      const approved = i % 2 === 1;
      em.create(ProjectTrust, {
        projectId: p.id,
        trustId: trust.id,
        state: approved ? "approved" : "pending",
        decidedAs: approved ? (k === 0 ? "site" : "hub") : null,
        // The first trust's Trust Admin decides; the others have none, so the bootstrap admin does.
        decidedBy: approved ? (k === 0 ? `user:${decider.id}` : "bootstrap-admin") : null,
        decidedAt: approved ? new Date(Date.UTC(2026, 0, 2)) : null,
        reason: null,
        freezeState: "not_requested",
        freezeTaskId: null,
        frozenPersonCount: null,
      });
    }
  });
  await em.flush();
  t.context = { tdb, db, projectIds: projects.map((p) => p.id), owner, members, decider };
});

/** Project i's members, in the order they were added: its own member, then the next project's, then a user that is gone. */
function memberIdsOf(i: number, members: readonly User[]): string[] {
  return [members[i]!.id, members[(i + 1) % members.length]!.id, GONE].slice(0, 1 + (i % 3));
}

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
  // Members and decisions together, then trusts and people together.
  t.is(page.queries, 4);

  for (const [i, message] of page.result.entries()) {
    const alone = await projectToProto(t.context.db.em(), projects[i]!);
    t.deepEqual(message, alone);
    t.deepEqual(message.memberIds, memberIdsOf(i, t.context.members));
    t.deepEqual(
      message.decisions.map((d) => d.trustCode),
      ["north", "south", "east"].slice(0, 1 + (i % 3)).sort(),
    );
  }
});

test.serial("owners, members and deciders come with the email and name of the user behind them", async (t) => {
  const { owner, members, decider } = t.context;
  const em = t.context.db.em();
  const projects = await em.find(Project, { id: { $in: t.context.projectIds } }, { orderBy: { name: "asc" } });
  const messages = await projectsToProto(em, projects);

  t.like(messages[0]!.owner, { userId: owner.id, email: "olivia@uni.test", name: "Olivia" });
  t.is(messages[PROJECTS - 1]!.ownerId, "bootstrap-admin");
  t.is(messages[PROJECTS - 1]!.owner, undefined, "the bootstrap admin is no user");

  const third = messages[2]!;
  t.deepEqual(
    third.members.map((m) => [m.userId, m.email, m.name]),
    [
      [members[2]!.id, "member2@uni.test", "Member2"],
      [members[3]!.id, "member3@uni.test", "Member3"],
      [GONE, "", ""],
    ],
    "one person per member id, in the same order; a user that is gone keeps only its id",
  );

  const decisions = messages[5]!.decisions;
  const byUser = decisions.find((d) => d.decidedBy === `user:${decider.id}`)!;
  t.like(byUser.decider, { userId: decider.id, email: "nora@uni.test", name: "Nora" });
  const byBootstrap = decisions.find((d) => d.decidedBy === "bootstrap-admin")!;
  t.is(byBootstrap.decider, undefined, "a decision by the bootstrap admin names no user");
  t.true(messages[0]!.decisions.every((d) => d.decider === undefined), "a pending decision has no decider");
});

test.serial("an empty page costs no query", async (t) => {
  const { result, queries } = await countQueries(() => projectsToProto(t.context.db.em(), []));
  t.deepEqual(result, []);
  t.is(queries, 0);
});

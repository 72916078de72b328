/**
 * The lists on the administrator's pages (trusts, users, audit log) cost the hub the same few SQL statements
 * for a full page as for one row: no statement per row. Counted on a real hub and a real PostgreSQL, through
 * the RPCs the console calls.
 */
import anyTest, { type TestFn } from "ava";
import { AuditService } from "@flip/gen/flip/hub/v1/audit_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { Role, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { countQueries } from "@flip/shared/testing/query-counter.js";
import { startTestHub, type TestHub } from "../support/test-hub.js";

const test = anyTest as TestFn<{ hub: TestHub; admin: string }>;

const TRUSTS = ["north", "south", "east", "west", "central"];

test.before(async (t) => {
  const hub = await startTestHub();
  // With the bootstrap token, which serves only until the first Admin exists.
  for (const code of TRUSTS) await hub.registerTrust(code);
  const admin = (await hub.firstAdmin()).token;
  // A second admin, so the audit log's actors are several people.
  const other = (await hub.user(admin, "second-admin@hub.test", [{ role: Role.ADMIN }])).token;
  for (const [i, code] of TRUSTS.entries()) {
    await hub.user(i % 2 ? admin : other, `officer-${code}@hub.test`, [{ role: Role.TRUST_ADMIN, trust: code }, { role: Role.RESEARCHER }]);
  }
  t.context = { hub, admin };
});

test.after.always(async (t) => {
  await t.context.hub?.close();
});

/**
 * Statements the call costs: the least of a few runs, because the hub's own timers (the scheduler's pass,
 * the audit sequencer's safety net) may query while one runs and the counter sees the whole process.
 */
async function statements(call: () => Promise<unknown>): Promise<number> {
  let least = Infinity;
  for (let i = 0; i < 3; i++) least = Math.min(least, (await countQueries(call)).queries);
  return least;
}

// Serial: the query counter counts every query of the process.
test.serial("a page of trusts costs as many statements as a page of one trust", async (t) => {
  const trusts = t.context.hub.client(TrustService, t.context.admin);
  const list = (pageSize: number) => trusts.listTrusts({ includeDisabled: true, page: { pageSize } });
  t.is((await list(50)).trusts.length, TRUSTS.length);
  const one = await statements(() => list(1));
  const page = await statements(() => list(50));
  t.log(`ListTrusts: ${one} statements for one trust, ${page} for ${TRUSTS.length}`);
  t.is(page, one, `ListTrusts: ${one} statements for one trust, ${page} for ${TRUSTS.length}`);
});

test.serial("a page of users, with their roles, costs as many statements as a page of one user", async (t) => {
  const users = t.context.hub.client(UserService, t.context.admin);
  const list = (pageSize: number) => users.listUsers({ page: { pageSize } });
  const all = (await list(50)).users;
  t.is(all.length, 2 + TRUSTS.length);
  t.true(all.filter((u) => u.email.startsWith("officer-")).every((u) => u.roles.length === 2), "each user comes with their own roles");
  const one = await statements(() => list(1));
  const page = await statements(() => list(50));
  t.log(`ListUsers: ${one} statements for one user, ${page} for ${all.length}`);
  t.is(page, one, `ListUsers: ${one} statements for one user, ${page} for ${all.length}`);
});

test.serial("a page of audit entries, with the people behind them, costs as many statements as a page of one entry", async (t) => {
  const audit = t.context.hub.client(AuditService, t.context.admin);
  // Sign-ins: every entry's actor is a user, so a page of one also looks up its person.
  const list = (pageSize: number) => audit.listAuditEntries({ actionPrefix: "session.", page: { pageSize } });
  const entries = (await list(100)).entries;
  t.true(entries.length > TRUSTS.length);
  t.is(new Set(entries.map((e) => e.actorPerson?.email)).size, entries.length, "each entry names its own person");
  const one = await statements(() => list(1));
  const page = await statements(() => list(100));
  t.log(`ListAuditEntries: ${one} statements for one entry, ${page} for ${entries.length}`);
  t.is(page, one, `ListAuditEntries: ${one} statements for one entry, ${page} for ${entries.length}`);
});

test.serial("newest first, pinned to the first page's top entry, pages neither skip nor repeat while entries are appended", async (t) => {
  const audit = t.context.hub.client(AuditService, t.context.admin);
  const all = (await audit.listAuditEntries({ page: { pageSize: 500 } })).entries.map((e) => e.seq);
  const first = await audit.listAuditEntries({ newestFirst: true, page: { pageSize: 3 } });
  t.deepEqual(
    first.entries.map((e) => e.seq),
    all.slice(-3).reverse(),
    "the newest entries come first",
  );
  const anchor = first.entries[0]!.seq + 1n;
  // New entries arrive between the pages (a user is created, which audits itself).
  await t.context.hub.user(t.context.admin, "late-arrival@hub.test", [{ role: Role.RESEARCHER }]);
  const second = await audit.listAuditEntries({ newestFirst: true, beforeSeq: anchor, page: { pageSize: 3, pageToken: first.page!.nextPageToken } });
  t.deepEqual(
    second.entries.map((e) => e.seq),
    all.slice(-6, -3).reverse(),
    "the second page goes on where the first ended",
  );
  const head = await audit.listAuditEntries({ newestFirst: true, page: { pageSize: 1 } });
  t.true(head.entries[0]!.seq >= anchor, "without before_seq the new entries are on top");
});

/**
 * One gateway per trust: a second gateway process on the same state directory refuses to start, and
 * one with its own state directory is refused by the hub while the established gateway is alive, so
 * the two never replace each other's link and every task runs once. It takes over once the first stops.
 */
import anyTest, { type TestFn } from "ava";
import { TaskState } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { adminClients, linked, startGatewayProc, startHubProc, TaskEndWatcher, waitForTask, type AdminClients, type GatewayProc, type HubProc } from "../support/link.js";

interface Ctx {
  db: TestDatabase;
  hub: HubProc;
  admin: AdminClients;
  key: string;
  ends: TaskEndWatcher;
  gateways: GatewayProc[];
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const db = await createTestDatabase("link_one_gateway");
  const hub = await startHubProc({ databaseUrl: db.url });
  const admin = adminClients(hub.url);
  const { apiKey } = await admin.trusts.registerTrust({ name: "York hospital", code: "york" });
  t.context = { db, hub, admin, key: apiKey, ends: await TaskEndWatcher.start(db.url), gateways: [] };
});

test.after.always(async (t) => {
  for (const g of t.context.gateways ?? []) await g.proc.stop();
  await t.context.hub?.proc.stop();
  await t.context.ends?.stop();
  await t.context.db?.drop();
});

function gateway(t: { context: Ctx }, name: string, stateDir?: string): GatewayProc {
  const g = startGatewayProc({ hubUrl: t.context.hub.url, trustCode: "york", key: t.context.key, name, stateDir });
  t.context.gateways.push(g);
  return g;
}

test.serial("two gateways of one trust: the second on the same state directory will not start; one elsewhere waits, and tasks run once", async (t) => {
  const { admin, ends, hub } = t.context;
  const first = gateway(t, "gateway york 1");
  await linked(first);

  const sameDir = gateway(t, "gateway york 2", first.stateDir);
  const exit = await sameDir.proc.exited;
  t.is(exit.code, 4);
  const refusal = sameDir.proc.logs.find((r) => r.level === 60);
  t.regex(String(refusal?.msg), /^another trust gateway \(pid \d+\) is using .+; stop it first, or give this one its own FLIP_GATEWAY_STATE_DIR$/);

  const hubLogs = hub.proc.logs.length;
  const second = gateway(t, "gateway york 3");
  const waiting = await second.proc.waitForLog("another gateway of this trust is linked to the hub; waiting for it to stop");
  t.regex(String(waiting.reason), /trust "york" already has a live gateway linked \(.+\/pid \d+\/.+, on hub replica hub\) since .+; stop it first/);
  const warned = await hub.proc.waitForLog("a second gateway of this trust tried to link; refused, keeping the established one (stop one of them)", { since: hubLogs });
  t.true(Number(warned.refusedAttempts) >= 1);
  const { trust } = await admin.trusts.getTrust({ trust: "york" });
  t.is(trust?.link?.hubInstance, "hub", "flip trust get shows where the established link is held");
  t.truthy(trust?.link?.connectedAt);
  t.regex(trust?.link?.gateway ?? "", /\/pid \d+\//, "it names the gateway process holding the link");
  t.true((trust?.link?.refusedAttempts ?? 0) >= 1, "and counts the refused one, so an operator sees there is a second gateway to stop");
  t.regex(trust?.link?.lastRefusedGateway ?? "", /\/pid \d+\//);
  t.not(trust?.link?.lastRefusedGateway, trust?.link?.gateway);

  for (let i = 0; i < 3; i++) {
    const { task } = await admin.tasks.createEchoTask({ trust: "york", message: `once ${i}` });
    t.is((await waitForTask(admin.tasks, task!.id)).state, TaskState.SUCCEEDED);
    t.deepEqual(await ends.endsOf(task!.id), ["succeeded"]);
    t.true(first.taskLog().some((e) => e.taskId === task!.id && e.event === "started"), "run by the established gateway");
  }
  t.deepEqual(second.taskLog(), [], "the waiting gateway ran nothing");
  t.false(first.proc.logs.some((r) => r.msg === "link to the hub lost; reconnecting"), "the established link never flapped");

  // Once the established gateway stops, the waiting one takes the link and the trust's work.
  const since = second.proc.logs.length;
  await first.proc.stop();
  await linked(second, since);
  const { task } = await admin.tasks.createEchoTask({ trust: "york", message: "after the handover" });
  t.is((await waitForTask(admin.tasks, task!.id)).state, TaskState.SUCCEEDED);
  t.true(second.taskLog().some((e) => e.taskId === task!.id && e.event === "started"));
});

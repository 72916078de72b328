/**
 * A rolling restart: a hub stopped with SIGTERM tells its linked gateways it is going away and exits
 * without waiting out its grace period for their connections; they link to its successor.
 */
import test from "ava";
import { TaskState } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { createTestDatabase } from "@flip/shared/testing/postgres.js";
import { adminClients, linked, startGatewayProc, startHubProc, waitForTask } from "../support/link.js";

/** How long the hub's server waits for open connections to close on shutdown (serve.ts close()). */
const SERVER_GRACE_MS = 5_000;

test("a hub with linked gateways stops promptly on SIGTERM, and the gateways link to its successor", async (t) => {
  const db = await createTestDatabase("link_hub_shutdown");
  const hub = await startHubProc({ databaseUrl: db.url });
  const { apiKey } = await adminClients(hub.url).trusts.registerTrust({ name: "Hull hospital", code: "hull" });
  const gateway = startGatewayProc({ hubUrl: hub.url, trustCode: "hull", key: apiKey });
  t.teardown(async () => {
    await gateway.proc.stop();
    await db.drop();
  });
  await linked(gateway);

  const since = gateway.proc.logs.length;
  const started = Date.now();
  const exit = await hub.proc.stop(4 * SERVER_GRACE_MS);
  const stopMs = Date.now() - started;
  t.is(exit.code, 0);
  const lost = await gateway.proc.waitForLog("link to the hub lost; reconnecting", { since });
  t.is(lost.reason, "the hub is shutting down; reconnect", "the gateway was told why, not cut off");
  // Not a timing measurement: a hub that waits for the gateway's connection takes the whole grace period.
  t.true(stopMs < SERVER_GRACE_MS, `the hub took ${stopMs} ms to stop`);

  const successor = await startHubProc({ databaseUrl: db.url, port: hub.port, name: "hub-2" });
  t.teardown(() => successor.proc.stop().then(() => undefined));
  await linked(gateway, since);
  const admin = adminClients(successor.url);
  const { task } = await admin.tasks.createEchoTask({ trust: "hull", message: "after the restart" });
  t.is((await waitForTask(admin.tasks, task!.id)).state, TaskState.SUCCEEDED);
});

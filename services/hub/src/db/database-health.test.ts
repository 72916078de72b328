import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import test from "ava";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@flip/gen/health/v1/health_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { freePort, startEmbeddedPostgres, type RunningPostgres } from "@flip/shared/postgres/embedded.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { readHubConfig } from "../config.js";
import { startHub } from "../hub.js";

const log = createLogger({ service: "hub", level: process.env.FLIP_TEST_LOG_LEVEL ?? "silent" });

test("the hub reports NOT_SERVING while its PostgreSQL is down and SERVING again once it answers", async (t) => {
  t.timeout(90_000);
  // Its own server, so the test can stop it under the hub; the same port when it comes back.
  const dir = mkdtempSync(path.join(os.tmpdir(), "flip-hub-health-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pgOptions = { dataDir: path.join(dir, "postgres"), port: await freePort(), databases: ["flip"], log };
  let postgres: RunningPostgres = await startEmbeddedPostgres(pgOptions);
  // As root the data may be kept where the postgres OS user can reach it, outside `dir`: remove() deletes it too.
  t.teardown(() => postgres.remove());
  const config = readHubConfig({
    DATABASE_URL: postgres.urlFor("flip"),
    FLIP_HUB_ADDR: "127.0.0.1:0",
    FLIP_ADMIN_TOKEN: "bootstrap-admin-token-for-tests",
    FLIP_HUB_DATA_DIR: path.join(dir, "hub"),
  });
  const hub = await startHub(config, log);
  t.teardown(() => hub.close());

  const health = createClient(Health, createGrpcTransport({ baseUrl: hub.url }));
  const statuses = async () => [(await health.check({})).status, (await health.check({ service: TrustService.typeName })).status];
  const all = (want: Status) => (got: Status[]) => got.every((s) => s === want);
  t.deepEqual(await statuses(), [Status.SERVING, Status.SERVING]);

  await postgres.stop();
  await eventually(statuses, all(Status.NOT_SERVING), { timeoutMs: 30_000, what: "NOT_SERVING while PostgreSQL is down" });

  postgres = await startEmbeddedPostgres(pgOptions);
  await eventually(statuses, all(Status.SERVING), { timeoutMs: 30_000, what: "SERVING once PostgreSQL answers again" });
  t.pass();
});

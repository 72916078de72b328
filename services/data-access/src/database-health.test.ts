import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import test from "ava";
import { DataAccessService } from "@flip/gen/flip/dataaccess/v1/data_access_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@flip/gen/health/v1/health_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { freePort, startEmbeddedPostgres, type RunningPostgres } from "@flip/shared/postgres/embedded.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { startDataAccess } from "./data-access.js";

const log = createLogger({ service: "data-access", level: process.env.FLIP_TEST_LOG_LEVEL ?? "silent" });

test("data-access reports NOT_SERVING while its PostgreSQL is down and SERVING again once it answers", async (t) => {
  t.timeout(90_000);
  // Its own server, so the test can stop it under the service; the same port when it comes back.
  const dir = mkdtempSync(path.join(os.tmpdir(), "flip-data-access-health-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pgOptions = { dataDir: path.join(dir, "postgres"), port: await freePort(), databases: ["omop"], log };
  let postgres: RunningPostgres = await startEmbeddedPostgres(pgOptions);
  // As root the data may be kept where the postgres OS user can reach it, outside `dir`: remove() deletes it too.
  t.teardown(() => postgres.remove());
  const service = await startDataAccess(
    {
      host: "127.0.0.1",
      port: 0,
      databaseUrl: postgres.urlFor("omop"),
      readerUrl: undefined,
      internalKey: "test-internal-key-0123456789",
      threshold: 10,
      statementTimeoutMs: 1_500,
      maxRows: 1_000,
      policy: { minCohortSize: 0, queryBudgetPerDay: 200, rules: [] },
      logLevel: "info",
    },
    log,
  );
  t.teardown(() => service.close());

  const health = createClient(Health, createGrpcTransport({ baseUrl: service.url }));
  const statuses = async () => [(await health.check({})).status, (await health.check({ service: DataAccessService.typeName })).status];
  const all = (want: Status) => (got: Status[]) => got.every((s) => s === want);
  t.deepEqual(await statuses(), [Status.SERVING, Status.SERVING]);

  await postgres.stop();
  await eventually(statuses, all(Status.NOT_SERVING), { timeoutMs: 30_000, what: "NOT_SERVING while PostgreSQL is down" });

  postgres = await startEmbeddedPostgres(pgOptions);
  await eventually(statuses, all(Status.SERVING), { timeoutMs: 30_000, what: "SERVING once PostgreSQL answers again" });
  t.pass();
});

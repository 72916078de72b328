/**
 * `npm run bench -- cohort --trusts N [--queries Q] [--persons P] [--json]`
 *
 * Starts an embedded PostgreSQL server holding the hub's database and one synthetic OMOP database per
 * trust (P persons each, alternating case mixes), a hub, and per trust a data-access service and a
 * gateway, all in this process and talking over real HTTP/2 on loopback. Submits Q realistic cohort
 * queries one after another and measures submit → every trust answered (as the researcher sees it,
 * through WatchCohortQuery).
 */
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CohortService, TrustAnswerState } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { startEmbeddedPostgres } from "@flip/shared/postgres/embedded.js";
import { readHubConfig } from "@flip/hub/config.js";
import { startHub } from "@flip/hub/hub.js";
import { readDataAccessConfig } from "@flip/data-access/config.js";
import { startDataAccess } from "@flip/data-access/data-access.js";
import { createDataAccessClient } from "@flip/data-access/client.js";
import { readGatewayConfig } from "@flip/trust-gateway/config.js";
import { startGateway } from "@flip/trust-gateway/gateway.js";
import { trustTaskHandlers } from "@flip/trust-gateway/tasks/registry.js";
import { generateOmop } from "@flip/data-access/testing/omop/generate.js";
import { DEMO_COHORT_SQL } from "../demo/study.js";
import { percentile } from "./polling-model.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";

const root = path.resolve(import.meta.dirname, "../../..");
const progress = (msg: string) => process.stderr.write(`[bench cohort] ${msg}\n`);

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { trusts: { type: "string", default: "2" }, queries: { type: "string", default: "20" }, persons: { type: "string", default: "5000" }, json: { type: "boolean", default: false } },
  });
  const trusts = Number(values.trusts);
  const queries = Number(values.queries);
  const persons = Number(values.persons);
  if (![trusts, queries, persons].every((n) => Number.isInteger(n) && n > 0) || trusts > 50) {
    process.stderr.write("--trusts (1-50), --queries and --persons must be positive integers\n");
    return 2;
  }
  const log = createLogger({ service: "bench", level: process.env.FLIP_LOG_LEVEL ?? "warn", destination: process.stderr });
  const dataDir = path.join(root, ".tmp", `bench-cohort-pg-${process.pid}`);
  const codes = Array.from({ length: trusts }, (_, i) => `trust-${i + 1}`);
  const postgres = await startEmbeddedPostgres({ dataDir, port: 0, databases: ["hub", ...codes.map((c) => c.replace("-", "_"))], log });
  const stops: (() => Promise<void>)[] = [() => postgres.remove()];
  try {
    const adminToken = randomBytes(24).toString("base64url");
    const hub = await startHub(readHubConfig({ DATABASE_URL: postgres.urlFor("hub"), FLIP_HUB_ADDR: "127.0.0.1:0", FLIP_ADMIN_TOKEN: adminToken, FLIP_HUB_DATA_DIR: path.join(dataDir, "hub"), FLIP_LOG_LEVEL: "warn" }), log);
    stops.push(() => hub.close());
    const transport = createGrpcTransport({ baseUrl: hub.url, interceptors: [bearerAuth(adminToken)] });
    const profiles = ["north", "south", "central"];
    let totalPersons = 0;
    for (const [i, code] of codes.entries()) {
      const { apiKey } = await createClient(TrustService, transport).registerTrust({ name: `Bench ${code}`, code, region: "bench" });
      const omopUrl = postgres.urlFor(code.replace("-", "_"));
      progress(`${code}: loading ${persons} synthetic persons`);
      await generateOmop(omopUrl, { seed: 100 + i, persons, profile: profiles[i % profiles.length]! });
      totalPersons += persons;
      const internalKey = randomBytes(24).toString("base64url");
      const dataAccess = await startDataAccess(readDataAccessConfig({ FLIP_DATA_ACCESS_ADDR: "127.0.0.1:0", FLIP_DATA_ACCESS_DATABASE_URL: omopUrl, FLIP_TRUST_INTERNAL_KEY: internalKey, FLIP_LOG_LEVEL: "warn" }), log);
      stops.push(() => dataAccess.close());
      const gateway = await startGateway(
        readGatewayConfig({ FLIP_HUB_URL: hub.url, FLIP_TRUST_CODE: code, FLIP_TRUST_KEY: apiKey, FLIP_GATEWAY_STATE_DIR: path.join(dataDir, "gw", code), FLIP_GATEWAY_GPUS: "none" }),
        log,
        { handlers: trustTaskHandlers({ dataAccess: createDataAccessClient({ baseUrl: dataAccess.url, internalKey }) }), persistent: false },
      );
      stops.push(() => gateway.close());
      await gateway.linked(30_000);
    }
    const { project } = await createClient(ProjectService, transport).createProject({ name: "cohort benchmark" });
    const cohorts = createClient(CohortService, transport);
    const latencies: number[] = [];
    const counts: number[] = [];
    for (let q = 0; q <= queries; q++) {
      const start = performance.now();
      const { query } = await cohorts.submitCohortQuery({ projectId: project!.id, sql: DEMO_COHORT_SQL });
      let last = query!;
      for await (const { query: msg } of cohorts.watchCohortQuery({ queryId: query!.id }, { timeoutMs: 120_000 })) last = msg!;
      const ms = performance.now() - start;
      if (!last.complete || last.answers.some((a) => a.state !== TrustAnswerState.OK)) throw new Error(`query ${q} did not get an OK answer from every trust`);
      // The first query warms caches and connections; it is not counted.
      if (q > 0) {
        latencies.push(ms);
        counts.push(Number(last.totalRecordCount));
      }
    }
    latencies.sort((a, b) => a - b);
    const result = {
      benchmark: "cohort",
      trusts,
      queries,
      persons_per_trust: persons,
      total_persons: totalPersons,
      total_record_count: counts[0] ?? 0,
      p50_ms: Math.round(percentile(latencies, 50) * 10) / 10,
      p99_ms: Math.round(percentile(latencies, 99) * 10) / 10,
      mean_ms: Math.round((latencies.reduce((a, b) => a + b, 0) / latencies.length) * 10) / 10,
      hub_rss_mb: Math.round(process.memoryUsage().rss / 1048576),
      note: "hub, data-access and gateways in one process on loopback HTTP/2; one embedded PostgreSQL 18",
    };
    process.stdout.write(values.json ? JSON.stringify(result) + "\n" : Object.entries(result).map(([k, v]) => `${k.padEnd(20)} ${v}`).join("\n") + "\n");
    return 0;
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

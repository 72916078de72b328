/**
 * `npm start`: the whole platform on one machine with embedded defaults. Starts the hub on an embedded
 * PostgreSQL server, registers the demo trusts, and prints how to call it. State lives in .flip/
 * (FLIP_DEMO_DIR) and is kept between runs. With --exit, it stops after start-up (for smoke tests).
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { createLogger } from "@flip/shared/logging/logger.js";
import { readHubConfig } from "@flip/hub/config.js";
import { startHub } from "@flip/hub/hub.js";
import { DemoState } from "./demo-state.js";
import { demoTrusts, ensureDemoTrusts } from "./demo-trusts.js";

const { values } = parseArgs({ options: { exit: { type: "boolean", default: false } } });
const root = path.resolve(import.meta.dirname, "../../..");
const demoDir = path.resolve(process.env.FLIP_DEMO_DIR ?? path.join(root, ".flip"));
const state = new DemoState(path.join(demoDir, "demo"));
const log = createLogger({ service: "demo", level: process.env.FLIP_LOG_LEVEL ?? "warn" });
const adminToken = state.adminToken();

const hubConfig = readHubConfig({
  ...process.env,
  FLIP_HUB_DATA_DIR: process.env.FLIP_HUB_DATA_DIR ?? path.join(demoDir, "hub"),
  FLIP_ADMIN_TOKEN: adminToken,
});
const hub = await startHub(hubConfig, log);
const stops: (() => Promise<void>)[] = [() => hub.close()];
const stopAll = async () => {
  for (const stop of stops.reverse()) await stop().catch((err: unknown) => log.error({ err }, "stop failed"));
};
process.once("SIGINT", () => void stopAll().then(() => process.exit(0)));
process.once("SIGTERM", () => void stopAll().then(() => process.exit(0)));

await ensureDemoTrusts(hub.url, adminToken, state);

const out = process.stdout;
out.write(`
FLIP is running.

  hub:          ${hub.url}   (Connect, gRPC and gRPC-Web on one port)
  admin token:  ${adminToken}
  trusts:       ${demoTrusts.map((t) => t.code).join(", ")}  (API keys in ${path.join(state.dir, "trusts")})
  state:        ${demoDir}

Try it (another terminal):
  export FLIP_HUB_URL=${hub.url} FLIP_ADMIN_TOKEN=${adminToken}
  ./tools/bin/flip trust list
  npx buf curl --http2-prior-knowledge --list-services ${hub.url}
  npx buf curl --http2-prior-knowledge -H "Authorization: Bearer $FLIP_ADMIN_TOKEN" -d '{}' ${hub.url}/flip.hub.v1.TrustService/ListTrusts

Ctrl-C stops everything.
`);

if (values.exit) {
  await stopAll();
  process.exit(0);
}

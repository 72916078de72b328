/**
 * `npm start`: the whole platform on one machine with embedded defaults. Starts the hub on an embedded
 * PostgreSQL server, creates the demo people and trusts, starts each trust (its own PostgreSQL with
 * synthetic OMOP data, data-access, gateway), and runs a cohort study end to end. State lives in .flip/
 * (FLIP_DEMO_DIR) and is kept between runs. With --exit, it stops after the study (for smoke tests).
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { createLogger } from "@flip/shared/logging/logger.js";
import { readHubConfig } from "@flip/hub/config.js";
import { startHub } from "@flip/hub/hub.js";
import { ensureDemoAccounts } from "./demo-accounts.js";
import { DemoState } from "./demo-state.js";
import { startDemoTrust } from "./demo-trust.js";
import { demoTrusts, ensureDemoTrusts } from "./demo-trusts.js";
import { ensureDebianPackages } from "./debian-packages.js";
import { runDemoImaging } from "./imaging-study.js";
import { runDemoStudy } from "./study.js";
import { prepareTrainingEngine } from "./training-engine.js";
import { runDemoTraining } from "./training.js";

const { values } = parseArgs({
  options: {
    exit: { type: "boolean", default: false },
    "no-study": { type: "boolean", default: false },
    "no-training": { type: "boolean", default: false },
    "no-imaging": { type: "boolean", default: false },
  },
});
const DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";
const root = path.resolve(import.meta.dirname, "../../..");
const demoDir = path.resolve(process.env.FLIP_DEMO_DIR ?? path.join(root, ".flip"));
const state = new DemoState(path.join(demoDir, "demo"));
const log = createLogger({ service: "demo", level: process.env.FLIP_LOG_LEVEL ?? "warn" });
const bootstrapToken = state.adminToken();
const out = process.stdout;
const step = (line: string) => out.write(`• ${line}\n`);

const stops: (() => Promise<void>)[] = [];
const stopAll = async () => {
  for (const stop of stops.splice(0).reverse()) await stop().catch((err: unknown) => log.error({ err }, "stop failed"));
};
process.once("SIGINT", () => void stopAll().then(() => process.exit(0)));
process.once("SIGTERM", () => void stopAll().then(() => process.exit(0)));

try {
  step("starting the hub on an embedded PostgreSQL server");
  const hub = await startHub(
    readHubConfig({
      ...process.env,
      FLIP_HUB_DATA_DIR: process.env.FLIP_HUB_DATA_DIR ?? path.join(demoDir, "hub"),
      FLIP_ADMIN_TOKEN: bootstrapToken,
      FLIP_METRICS_ADDR: process.env.FLIP_METRICS_ADDR ?? "127.0.0.1:9464",
    }),
    log,
  );
  stops.push(() => hub.close());

  const keys = await ensureDemoTrusts(hub.url, bootstrapToken, state);
  const accounts = await ensureDemoAccounts(hub.url, bootstrapToken, state);
  if (accounts.created.length > 0) {
    out.write("\nDemo accounts (passwords shown once; sign in with ./tools/bin/flip login --email <email>):\n");
    for (const a of accounts.created) out.write(`  ${a.role.padEnd(22)} ${a.email.padEnd(30)} ${a.password}\n`);
    out.write("\n");
  }

  // Imaging needs Debian's Orthanc (PACS and research store) and dcm2niix (NIfTI).
  const imagingMissing = values["no-imaging"]
    ? []
    : ensureDebianPackages(
        [
          ["Orthanc", "orthanc"],
          [DICOMWEB_PLUGIN, "orthanc-dicomweb"],
          ["dcm2niix", "dcm2niix"],
        ],
        "imaging",
        { step, out },
      );
  const imaging = !values["no-imaging"] && imagingMissing.length === 0;
  if (!values["no-imaging"] && !imaging) out.write(`  (imaging skipped: install Debian's orthanc, orthanc-dicomweb and dcm2niix)\n`);

  const training = values["no-training"] || values["no-study"] ? undefined : await prepareTrainingEngine({ log, step, out, torch: imaging });
  if (training) stops.push(() => training.stop());

  const imagingUrls = new Map<string, string>();
  for (const trust of demoTrusts) {
    step(`starting trust "${trust.code}": PostgreSQL with ${trust.persons} synthetic OMOP persons, data-access, ${imaging ? "PACS, research store, imaging, " : ""}gateway${training ? ", training workloads" : ""}`);
    const running = await startDemoTrust({
      trust,
      hubUrl: hub.url,
      apiKey: keys.get(trust.code)!,
      dir: path.join(demoDir, "trusts", trust.code),
      state,
      log,
      dockerHost: training?.host,
      imaging,
      say: (line) => out.write(`${line}\n`),
    });
    stops.push(() => running.close());
    await running.gateway.linked(30_000);
    if (running.imaging) imagingUrls.set(trust.code, running.imaging.imagingUrl);
  }

  let imagingProject: string | undefined;
  if (!values["no-study"]) {
    step("running a cohort study end to end");
    const result = await runDemoStudy(hub.url, accounts, out);
    if (!result.auditOk) process.exitCode = 1;
    if (training) {
      step("training a model across both trusts (federated averaging, 3 rounds)");
      const trained = await runDemoTraining(hub.url, accounts, out, path.join(demoDir, "demo"));
      if (!trained.weightsPath) process.exitCode = 1;
    }
    if (imaging) {
      step(`imaging: importing each trust's cohort studies from its PACS, de-identified${training ? ", then training the torch workload on them" : ""}`);
      const result = await runDemoImaging(hub.url, accounts, out, path.join(demoDir, "demo"), { train: training !== undefined });
      if (!result.imported || (training && !result.weightsPath)) process.exitCode = 1;
      imagingProject = result.projectId;
    }
  }

  out.write(`
FLIP is running.

  hub:      ${hub.url}   (Connect, gRPC and gRPC-Web on one port)
  metrics:  ${hub.metricsUrl ?? "off (FLIP_METRICS_ADDR is empty)"}   (the hub's Prometheus endpoint)
  trusts:   ${demoTrusts.map((t) => t.code).join(", ")}   (gateways linked; data in ${path.join(demoDir, "trusts")})
  state:    ${demoDir}

Try it (another terminal):
  export FLIP_HUB_URL=${hub.url}
  ./tools/bin/flip login --email researcher@flip.demo     # password printed on the first run
  ./tools/bin/flip trust list
  ./tools/bin/flip project list
  ./tools/bin/flip job list                               # the demo's training job; flip job watch <id>${
    imagingUrls.size > 0
      ? `
  ./tools/bin/flip imaging status --project ${imagingProject ?? "<id>"}   # each trust's import, as counts
  # north's own view, per accession (trust-internal: its imaging service, with its internal key):
  FLIP_TRUST_INTERNAL_KEY=$(cat ${path.join(demoDir, "demo", "trusts", "north.internal-key")}) \\
    ./tools/bin/flip imaging accessions --imaging ${imagingUrls.get("north")} --project ${imagingProject ?? "<id>"}`
      : ""
  }
  npx buf curl --http2-prior-knowledge --list-services ${hub.url}

Ctrl-C stops everything.
`);
  if (values.exit) {
    await stopAll();
    process.exit(process.exitCode ?? 0);
  }
} catch (e) {
  log.error({ err: e }, "demo failed");
  process.stderr.write(`npm start failed: ${e instanceof Error ? e.message : String(e)}\n`);
  await stopAll();
  process.exit(1);
}

/**
 * `npm start`: the whole platform on one machine with embedded defaults. Starts the hub on an embedded
 * PostgreSQL server, creates the demo people and trusts, starts each trust (its own PostgreSQL with
 * synthetic OMOP data, data-access, gateway), and runs a cohort study end to end. State lives in .flip/
 * (FLIP_DEMO_DIR) and is kept between runs. With --exit, it stops after the study (for smoke tests).
 * Ctrl-C (or SIGTERM) stops every component in order, one line each; a second Ctrl-C stops at once.
 * --reset removes the kept state first (new accounts, databases and PACSs).
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "@flip/shared/config/settings.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { readHubConfig } from "@flip/hub/config.js";
import { startHub } from "@flip/hub/hub.js";
import { ensureConsoleBuilt } from "../console/build-console.js";
import { demoPeople, ensureDemoAccounts } from "./demo-accounts.js";
import { DemoState } from "./demo-state.js";
import { startDemoTrust } from "./demo-trust.js";
import { demoTrusts, ensureDemoTrusts } from "./demo-trusts.js";
import { ensureDebianPackages } from "./debian-packages.js";
import { runDemoImaging } from "./imaging-study.js";
import { OrderedShutdown, onStopSignals } from "./shutdown.js";
import { removeDemoState } from "./reset.js";
import { claimDemo, demoLockPath, DemoInUseError } from "./single-instance.js";
import { runDemoStudy } from "./study.js";
import { prepareTrainingEngine } from "./training-engine.js";
import { runDemoTraining } from "./training.js";

const { values } = parseArgs({
  options: {
    exit: { type: "boolean", default: false },
    "no-study": { type: "boolean", default: false },
    "no-training": { type: "boolean", default: false },
    "no-imaging": { type: "boolean", default: false },
    reset: { type: "boolean", default: false },
  },
});
const DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";
const root = path.resolve(import.meta.dirname, "../../..");
const demoDir = path.resolve(process.env.FLIP_DEMO_DIR ?? path.join(root, ".flip"));
const out = process.stdout;
const say = (line: string) => out.write(`${line}\n`);
const step = (line: string) => say(`• ${line}`);
// Logs go to stderr: stdout is the demo's story, for a person to read.
const log = createLogger({ service: "demo", level: process.env.FLIP_LOG_LEVEL ?? "warn", destination: process.stderr });

const shutdown = new OrderedShutdown(say);
let releaseDemoDir: () => void = () => undefined;

/** Stops every component in order, one line each, then exits with `code` (1 if one did not stop cleanly). */
async function stopAndExit(headline: string, code: number): Promise<never> {
  say(headline);
  const report = await shutdown.stopAll();
  releaseDemoDir();
  const took = `${report.seconds.toFixed(1)} s`;
  say(report.failed.length === 0 ? `FLIP stopped in ${took}.` : `FLIP stopped in ${took}; ${report.failed.length} component(s) did not stop cleanly (above).`);
  process.exit(report.failed.length > 0 ? 1 : code);
}

onStopSignals({
  stop: (signal) => void stopAndExit(`\n${signal === "SIGINT" ? "Ctrl-C" : signal}: stopping FLIP (Ctrl-C again stops at once)`, 0),
  stopNow: () => {
    // The 'exit' hooks stop the servers FLIP started: PostgreSQL finishes a fast shutdown by itself.
    say("stopping at once: databases finish shutting down by themselves; a running training container is picked up by the next npm start");
    process.exit(130);
  },
});

/** What the study did, for the summary: one line per part. */
const ran: { part: string; ok: boolean; detail: string }[] = [];

try {
  const hubConfig = readHubConfig({
    ...process.env,
    FLIP_HUB_DATA_DIR: process.env.FLIP_HUB_DATA_DIR ?? path.join(demoDir, "hub"),
    FLIP_METRICS_ADDR: process.env.FLIP_METRICS_ADDR ?? "127.0.0.1:9464",
  });
  releaseDemoDir = await claimDemo({
    demoDir,
    addresses: [
      { setting: "FLIP_HUB_ADDR", host: hubConfig.host, port: hubConfig.port, what: "the hub's address" },
      ...(hubConfig.metrics ? [{ setting: "FLIP_METRICS_ADDR", host: hubConfig.metrics.host, port: hubConfig.metrics.port, what: "the hub's metrics" }] : []),
    ],
  });
  if (values.reset) {
    removeDemoState(demoDir, [path.basename(demoLockPath(demoDir))]);
    step(`--reset: removed the demo's databases, PACSs, accounts and keys from ${demoDir}; starting from nothing`);
  }
  const state = new DemoState(path.join(demoDir, "demo"));
  const bootstrapToken = state.adminToken();

  await ensureConsoleBuilt(step);
  step("starting the hub on an embedded PostgreSQL server");
  const hub = await startHub({ ...hubConfig, adminToken: bootstrapToken }, log);
  shutdown.add("hub", "hub", () => hub.closeServer());
  shutdown.add("databases", "PostgreSQL of the hub", () => hub.close());

  const keys = await ensureDemoTrusts(hub.url, bootstrapToken, state);
  const accounts = await ensureDemoAccounts(hub.url, bootstrapToken, state);
  const consoleUrl = `${hub.url}/`;
  out.write(`\nDemo accounts${accounts.created.length > 0 ? " (new)" : ""}: sign in at ${consoleUrl} or with ./tools/bin/flip login --email <email>\n`);
  for (const a of demoPeople(accounts)) out.write(`  ${a.role.padEnd(22)} ${a.email.padEnd(30)} ${a.password ?? "(printed on the first run; npm start -- --reset makes new ones)"}\n`);
  out.write(`  (kept in ${path.join(state.dir, "accounts.json")}, readable by you only)\n\n`);

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

  // Also with --no-study: a person who skips the demo study can still train from the console or the CLI.
  const training = values["no-training"] ? undefined : await prepareTrainingEngine({ log, step, out, torch: imaging });

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
      say,
      shutdown,
    });
    await running.gateway.linked(30_000);
    if (running.imaging) imagingUrls.set(trust.code, running.imaging.imagingUrl);
  }

  let imagingProject: string | undefined;
  if (!values["no-study"]) {
    step("running a cohort study end to end");
    const study = await runDemoStudy(hub.url, accounts, out);
    ran.push({ part: "cohort study", ok: study.auditOk, detail: study.auditOk ? "answered, staged, decided; audit chain verified" : "the audit chain did not verify" });
    if (training) {
      step("training a model across both trusts (federated averaging, 3 rounds)");
      const trained = await runDemoTraining(hub.url, accounts, out, path.join(demoDir, "demo"));
      ran.push({ part: "federated training", ok: Boolean(trained.weightsPath), detail: trained.weightsPath ? `3 rounds; final weights in ${trained.weightsPath}` : `job ${trained.jobId} did not complete` });
    }
    if (imaging) {
      step(`imaging: importing each trust's cohort studies from its PACS, de-identified${training ? ", then training the torch workload on them" : ""}`);
      const result = await runDemoImaging(hub.url, accounts, out, path.join(demoDir, "demo"), { train: training !== undefined });
      const ok = result.imported && (!training || Boolean(result.weightsPath));
      ran.push({
        part: "imaging",
        ok,
        detail: !result.imported ? "the import did not finish at every trust" : !training ? "imported at every trust" : result.weightsPath ? `imported at every trust; CNN trained, weights in ${result.weightsPath}` : `imported; CNN job ${result.jobId} did not complete`,
      });
      imagingProject = result.projectId;
    }
  }
  const allOk = ran.every((r) => r.ok);
  if (ran.length > 0) {
    say(`\n${allOk ? "The demo study ran end to end:" : "The demo study did not fully succeed:"}`);
    for (const r of ran) say(`  ${r.ok ? "ok    " : "FAILED"}  ${r.part.padEnd(19)} ${r.detail}`);
  }

  if (values.exit) {
    const what = ran.length > 0 ? "" : ` (hub and trusts ${demoTrusts.map((t) => t.code).join(", ")} started; --no-study ran no study)`;
    await stopAndExit(`\n--exit: stopping FLIP${what}; without --exit it keeps running for you to try the CLI`, allOk ? 0 : 1);
  }
  out.write(`
FLIP is running.

  console:  ${consoleUrl}   (open it in a browser; sign in as a demo account above)
  hub:      ${hub.url}   (Connect, gRPC and gRPC-Web on one port)
  metrics:  ${hub.metricsUrl ?? "off (FLIP_METRICS_ADDR is empty)"}   (the hub's Prometheus endpoint)
  trusts:   ${demoTrusts.map((t) => t.code).join(", ")}   (gateways linked; data in ${path.join(demoDir, "trusts")})
  state:    ${demoDir}   (npm start -- --reset starts again from nothing)

Try it (another terminal):
  export FLIP_HUB_URL=${hub.url}
  ./tools/bin/flip login --email researcher@flip.demo     # its password is in the table above
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

Ctrl-C stops everything (in order; Ctrl-C twice stops at once).
`);
} catch (e) {
  if (e instanceof DemoInUseError || e instanceof ConfigError) {
    // Nothing has started: one line says why.
    process.stderr.write(`npm start: ${e.message}\n`);
    process.exit(1);
  }
  // A Ctrl-C while starting stops what runs under the start, which may then fail: the stop says what happened.
  if (shutdown.stopping) await new Promise(() => undefined);
  log.error({ err: e }, "demo failed");
  process.stderr.write(`npm start failed: ${e instanceof Error ? e.message : String(e)}\n`);
  if (shutdown.empty) process.exit(1);
  await stopAndExit("stopping what had started", 1);
}

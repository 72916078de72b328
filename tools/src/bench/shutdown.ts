/**
 * `npm run bench -- shutdown [--runs N] [--idle S] [--study] [--json]`
 *
 * How long Ctrl-C takes to stop `npm start` when it is idle: runs the real `npm start` (without the
 * study unless --study) in a process group of its own, as a terminal does, waits until it prints "FLIP is
 * running." and then S seconds more, sends SIGINT to the whole group, and measures until npm has exited.
 * Reports each run, with FLIP's own figure and its slowest component, and the median. The demo directory
 * (databases, PACSs) is made by the first run and reused by the others.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { freePort } from "@flip/shared/postgres/embedded.js";
import { percentile } from "./polling-model.js";

const root = path.resolve(import.meta.dirname, "../../..");
const progress = (msg: string) => process.stderr.write(`[bench shutdown] ${msg}\n`);

interface StopRun {
  /** SIGINT to the group → npm exited. */
  signalToExitMs: number;
  /** What FLIP printed: "FLIP stopped in X s". */
  reportedSeconds: number;
  slowest: string;
  exitCode: number | null;
}

async function oneRun(demoDir: string, idleSeconds: number, study: boolean): Promise<StopRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, FLIP_DEMO_DIR: demoDir, FLIP_HUB_ADDR: `127.0.0.1:${await freePort()}`, FLIP_METRICS_ADDR: `127.0.0.1:${await freePort()}`, FLIP_NO_APT: "1" };
  delete env.DATABASE_URL;
  const child = spawn("npm", ["start", "--", ...(study ? [] : ["--no-study", "--no-training"])], { cwd: root, env, stdio: ["ignore", "pipe", "ignore"], detached: true });
  const lines: string[] = [];
  const running = new Promise<void>((resolve) =>
    createInterface({ input: child.stdout! }).on("line", (line) => {
      lines.push(line);
      if (line === "FLIP is running.") resolve();
    }),
  );
  const exited = new Promise<number | null>((resolve) => child.once("close", resolve));
  const early = await Promise.race([running.then(() => false), exited.then(() => true)]);
  if (early) throw new Error(`npm start exited before it was running:\n${lines.slice(-10).join("\n")}`);
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  const t0 = performance.now();
  process.kill(-child.pid!, "SIGINT");
  const exitCode = await exited;
  const signalToExitMs = performance.now() - t0;
  const reported = lines.map((l) => /^FLIP stopped in (\d+\.\d) s/.exec(l)).find(Boolean);
  const components = lines.map((l) => /^ {2}stopped (.+) \((\d+\.\d) s\)$/.exec(l)).filter((m): m is RegExpExecArray => m !== null);
  const slowest = components.sort((a, b) => Number(b[2]) - Number(a[2]))[0];
  return { signalToExitMs, reportedSeconds: Number(reported?.[1] ?? NaN), slowest: slowest ? `${slowest[1]} (${slowest[2]} s)` : "-", exitCode };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { runs: { type: "string", default: "5" }, idle: { type: "string", default: "3" }, study: { type: "boolean", default: false }, json: { type: "boolean", default: false } },
  });
  const runs = Number(values.runs);
  const idle = Number(values.idle);
  if (!Number.isInteger(runs) || runs < 1 || !(idle >= 0)) {
    process.stderr.write("--runs must be a positive integer and --idle a number of seconds\n");
    return 2;
  }
  const demoDir = mkdtempSync(path.join(root, ".tmp", "bench-shutdown-"));
  const results: StopRun[] = [];
  try {
    for (let i = 1; i <= runs; i++) {
      const r = await oneRun(demoDir, idle, values.study);
      results.push(r);
      progress(`run ${i}/${runs}: SIGINT → npm exited in ${(r.signalToExitMs / 1000).toFixed(2)} s (FLIP: ${r.reportedSeconds} s; slowest: ${r.slowest}; exit ${r.exitCode})`);
    }
  } finally {
    rmSync(demoDir, { recursive: true, force: true });
  }
  const ms = results.map((r) => r.signalToExitMs).sort((a, b) => a - b);
  const summary = {
    runs,
    idleSeconds: idle,
    study: values.study,
    signalToExitSeconds: { median: percentile(ms, 50) / 1000, max: ms.at(-1)! / 1000, each: results.map((r) => Number((r.signalToExitMs / 1000).toFixed(2))) },
    slowestComponents: results.map((r) => r.slowest),
    allExitedZero: results.every((r) => r.exitCode === 0),
  };
  if (values.json) process.stdout.write(JSON.stringify(summary) + "\n");
  else {
    process.stdout.write(
      `Ctrl-C on an idle npm start${values.study ? " (after the study)" : " (--no-study)"}, ${runs} runs, ${idle} s idle first:\n` +
        `  SIGINT → npm exited: median ${summary.signalToExitSeconds.median.toFixed(2)} s, max ${summary.signalToExitSeconds.max.toFixed(2)} s (target ≤ 2 s)\n` +
        `  each: ${summary.signalToExitSeconds.each.join(", ")} s; every run exited 0: ${summary.allExitedZero ? "yes" : "no"}\n`,
    );
  }
  return 0;
}

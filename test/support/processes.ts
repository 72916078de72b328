/**
 * Real service processes for integration tests: spawn a TypeScript entry point on the test's Node
 * (Node 24 under `npm test`), collect its pino JSON lines, wait for a log line, and stop or kill it
 * (SIGTERM for a clean stop, SIGKILL for a crash). Every process still running when the test worker
 * exits is killed, so a failed test leaves no orphans.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { SERVICE_NODE_FLAGS } from "@flip/shared/process/service-node-flags.js";
import { createInterface } from "node:readline";

export const repoRoot = path.resolve(import.meta.dirname, "../..");

/** One parsed JSON log line (pino): `msg`, `level` and whatever fields the service logged. */
export interface LogRecord {
  msg?: string;
  level?: number;
  [field: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** For messages: "hub", "gateway gstt". */
  name: string;
  /** The entry point, relative to the repository root, e.g. "services/hub/src/main.ts". */
  entry: string;
  args?: string[];
  env?: Record<string, string>;
  /**
   * Preload OpenTelemetry so W3C trace context propagates: spans are recorded, and exported only where
   * `env` names an OTLP endpoint (and OTEL_TRACES_EXPORTER=otlp). Off by default: it slows start-up.
   */
  telemetry?: boolean;
}

export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Every JSON line the process wrote to stdout so far. */
  readonly logs: LogRecord[];
  /** Whatever it wrote to stderr (configuration errors, crashes). */
  stderr(): string;
  readonly exited: Promise<Exit>;
  /**
   * Resolves with the first log record at index `since` or later that matches (a `msg` string or a
   * predicate); rejects after `timeoutMs` or when the process exits first.
   */
  waitForLog(match: string | ((r: LogRecord) => boolean), opts?: { since?: number; timeoutMs?: number }): Promise<LogRecord>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it exited. */
  stop(graceMs?: number): Promise<Exit>;
  /** SIGKILL, as in a crash or a power cut. */
  kill(): Promise<Exit>;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

export function spawnService(opts: SpawnOptions): ServiceProcess {
  const nodeArgs = [...SERVICE_NODE_FLAGS, "--import", "tsx"];
  if (opts.telemetry) nodeArgs.push("--import", path.join(repoRoot, "services/shared/src/telemetry/register.ts"));
  const env: Record<string, string | undefined> = {
    ...process.env,
    OTEL_SDK_DISABLED: opts.telemetry ? "false" : "true",
    OTEL_TRACES_EXPORTER: "none",
    // The test runner's own exporter settings must not leak into the services; a test names its collector in `env`.
    OTEL_EXPORTER_OTLP_ENDPOINT: undefined,
    ...opts.env,
  };
  const child = spawn(process.execPath, [...nodeArgs, path.join(repoRoot, opts.entry), ...(opts.args ?? [])], {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  const logs: LogRecord[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  const echo = process.env.FLIP_TEST_ECHO_LOGS === "1";
  child.stderr!.on("data", (d: Buffer) => {
    stderr.push(d.toString());
    if (echo) process.stderr.write(`[${opts.name} stderr] ${d.toString()}`);
  });
  createInterface({ input: child.stdout! }).on("line", (line) => {
    if (echo) process.stderr.write(`[${opts.name}] ${line}\n`);
    try {
      logs.push(JSON.parse(line) as LogRecord);
    } catch {
      logs.push({ msg: line });
    }
    for (const w of waiters) w();
  });
  // Resolved once the process has exited and its output has been read to the end ("close"), so a
  // last log line is never missed. A grandchild holding the pipes open must not hold this up: after
  // the exit, "close" gets one second.
  const exited = new Promise<Exit>((resolve) =>
    child.once("exit", (code, signal) => {
      live.delete(child);
      const settle = () => {
        clearTimeout(timer);
        resolve({ code, signal });
        for (const w of waiters) w();
      };
      const timer = setTimeout(settle, 1_000);
      child.once("close", settle);
    }),
  );
  let exit: Exit | undefined;
  void exited.then((e) => (exit = e));

  const waitForLog: ServiceProcess["waitForLog"] = (match, { since = 0, timeoutMs = 30_000 } = {}) => {
    const test = typeof match === "string" ? (r: LogRecord) => r.msg === match : match;
    const label = typeof match === "string" ? `"${match}"` : "a matching line";
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = since; i < logs.length; i++) {
          if (test(logs[i]!)) {
            done();
            resolve(logs[i]!);
            return;
          }
        }
        if (exit) {
          done();
          reject(new Error(`${opts.name} exited (${exit.code ?? exit.signal}) before logging ${label}; stderr: ${stderr.join("").slice(-2000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${opts.name} did not log ${label} within ${timeoutMs} ms; last lines: ${logs.slice(-5).map((r) => r.msg).join(" | ")}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  };

  return {
    name: opts.name,
    child,
    logs,
    stderr: () => stderr.join(""),
    exited,
    waitForLog,
    async stop(graceMs = 10_000) {
      if (exit) return exit;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const e = await exited;
      clearTimeout(timer);
      return e;
    },
    async kill() {
      if (exit) return exit;
      child.kill("SIGKILL");
      return await exited;
    },
  };
}

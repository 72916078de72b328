import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { createInterface } from "node:readline";

export const repoRoot = path.resolve(import.meta.dirname, "../..");
export const nodeBin = process.execPath;

export interface HubProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Log lines the hub wrote (JSON), for assertions. */
  logs: string[];
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, as in a crash. */
  kill(): Promise<void>;
}

/** Starts the real hub process (services/hub/src/main.ts) on a free port and waits for "hub listening". */
export async function startHubProcess(env: Record<string, string>, timeoutMs = 30_000): Promise<HubProcess> {
  const child = spawn(nodeBin, ["--import", "tsx", path.join(repoRoot, "services/hub/src/main.ts")], {
    cwd: repoRoot,
    env: { ...process.env, FLIP_HUB_ADDR: "127.0.0.1:0", FLIP_LOG_LEVEL: "info", OTEL_SDK_DISABLED: "true", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  const stderr: string[] = [];
  child.stderr!.on("data", (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub did not start in ${timeoutMs} ms: ${stderr.join("")}`)), timeoutMs);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      logs.push(line);
      try {
        const rec = JSON.parse(line) as { msg?: string; url?: string };
        if (rec.msg === "hub listening" && rec.url) {
          clearTimeout(timer);
          resolve(rec.url);
        }
      } catch {
        // not JSON: ignore
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`hub exited with ${code} before listening: ${stderr.join("")}`));
    });
  });
  return {
    url,
    port: Number(new URL(url).port),
    child,
    logs,
    async stop() {
      child.kill("SIGTERM");
      return await exited;
    },
    async kill() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

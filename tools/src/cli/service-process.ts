import { spawn } from "node:child_process";
import { constants } from "node:os";
import * as path from "node:path";
import { SERVICE_NODE_FLAGS } from "@flip/shared/process/service-node-flags.js";

const repoRoot = path.resolve(import.meta.dirname, "../../..");

/** Signals the CLI passes on to the service; a terminal closing (SIGHUP) stops it like Ctrl-C. */
const FORWARDED_SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Runs a service entry point (relative to the repository root) in the foreground on this Node, with
 * telemetry preloaded. SIGINT/SIGTERM/SIGHUP are forwarded (once) so the service shuts down gracefully, and the
 * service also stops when this process dies without forwarding (SIGKILL): it watches an IPC channel to
 * us (see exit-with-parent.ts). Resolves with the service's exit code (128 + n when a signal ended it).
 */
export async function runServiceInForeground(entry: string, env: NodeJS.ProcessEnv): Promise<number> {
  // Preloads by URL, resolved from here: bare names would resolve from the current directory.
  const preloads = [import.meta.resolve("tsx"), import.meta.resolve("@flip/shared/telemetry/register.ts"), import.meta.resolve("./exit-with-parent.ts")];
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, ...preloads.flatMap((p) => ["--import", p]), path.join(repoRoot, entry)], {
    stdio: ["inherit", "inherit", "inherit", "ipc"],
    // Its own process group: Ctrl-C in a terminal signals the whole foreground group, and a service that
    // got SIGINT from the terminal and again from us would take the second as "exit now, ungracefully".
    detached: true,
    env,
    cwd: process.cwd(),
  });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  for (const sig of FORWARDED_SIGNALS) process.on(sig, forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
    });
  } finally {
    for (const sig of FORWARDED_SIGNALS) process.off(sig, forward);
  }
}


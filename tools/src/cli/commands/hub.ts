import { spawn } from "node:child_process";
import * as path from "node:path";
import type { CliCommand } from "../command.js";

const repoRoot = path.resolve(import.meta.dirname, "../../../..");

/** `flip hub`: runs the hub process in the foreground with the current environment. */
export const hubCommands: CliCommand[] = [
  {
    path: ["hub"],
    summary: "Start the hub (settings from the environment; see README 'Configuration').",
    usage: "[--addr host:port]",
    options: { addr: { type: "string" } },
    async run(_ctx, args) {
      const env: NodeJS.ProcessEnv = { ...process.env, FLIP_SERVICE_NAME: "hub" };
      if (typeof args.values.addr === "string") env.FLIP_HUB_ADDR = args.values.addr;
      const child = spawn(
        process.execPath,
        ["--import", "tsx", "--import", "@flip/shared/telemetry/register.ts", path.join(repoRoot, "services/hub/src/main.ts")],
        { stdio: "inherit", env, cwd: process.cwd() },
      );
      const forward = (sig: NodeJS.Signals) => child.kill(sig);
      process.on("SIGINT", forward);
      process.on("SIGTERM", forward);
      return await new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? 1)));
    },
  },
];

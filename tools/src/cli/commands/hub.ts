import type { CliCommand } from "../command.js";
import { runServiceInForeground } from "../service-process.js";

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
      return await runServiceInForeground("services/hub/src/main.ts", env);
    },
  },
];

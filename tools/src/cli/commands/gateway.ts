import { stringOption, UsageError, type CliCommand } from "../command.js";
import { runServiceInForeground } from "../service-process.js";

/** Flags of `flip gateway` and the gateway settings they set (the environment supplies the rest). */
const FLAG_SETTINGS: Record<string, string> = {
  trust: "FLIP_TRUST_CODE",
  key: "FLIP_TRUST_KEY",
  capacity: "FLIP_GATEWAY_CAPACITY",
  gpus: "FLIP_GATEWAY_GPUS",
  "state-dir": "FLIP_GATEWAY_STATE_DIR",
};

/** `flip gateway`: runs a trust gateway in the foreground (exit code 3 when the hub refuses the trust). */
export const gatewayCommands: CliCommand[] = [
  {
    path: ["gateway"],
    summary: "Start a trust gateway: dials the hub, holds the trust's link and runs its tasks (see services/trust-gateway/README.md).",
    usage: "--trust <code> [--key <trust API key>] [--capacity echo=4,...] [--gpus auto|none|<JSON>] [--state-dir <dir>]",
    options: { trust: { type: "string" }, key: { type: "string" }, capacity: { type: "string" }, gpus: { type: "string" }, "state-dir": { type: "string" } },
    async run(ctx, args) {
      // The gateway reads its settings from the environment; flags override it for this process.
      const env: NodeJS.ProcessEnv = { ...process.env, FLIP_SERVICE_NAME: "trust-gateway", FLIP_HUB_URL: ctx.hubUrl };
      for (const [flag, setting] of Object.entries(FLAG_SETTINGS)) {
        const v = stringOption(args, flag);
        if (v) env[setting] = v;
      }
      if (!env.FLIP_TRUST_CODE) throw new UsageError("--trust (or FLIP_TRUST_CODE) is required");
      if (!env.FLIP_TRUST_KEY) throw new UsageError("--key (or FLIP_TRUST_KEY) is required: the key printed by `flip trust register`");
      return await runServiceInForeground("services/trust-gateway/src/main.ts", env);
    },
  },
];

import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import type { TaskLogEntry } from "@flip/trust-gateway/tasks/task-log.js";
import { stringOption, UsageError, type CliCommand } from "../command.js";
import { table } from "../format.js";

/** Reads a gateway's own task log (tasks.jsonl in its state directory); needs no hub. */
export function readTaskLog(stateDir: string): TaskLogEntry[] {
  const file = path.join(stateDir, "tasks.jsonl");
  if (!existsSync(file)) throw new UsageError(`no task log at ${file}; give the gateway's --state-dir (FLIP_GATEWAY_STATE_DIR)`);
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as TaskLogEntry);
}

export const trustLogCommands: CliCommand[] = [
  {
    path: ["gateway", "log"],
    summary: "Show the trust's own record of every task its gateway ran (read locally; the hub is not asked).",
    usage: "(--state-dir <dir> | --trust <code>) [--project <id>] [--limit N]",
    options: { "state-dir": { type: "string" }, trust: { type: "string" }, project: { type: "string" }, limit: { type: "string" } },
    async run(ctx, args) {
      const trust = stringOption(args, "trust");
      // A standalone gateway keeps its state in .flip/gateway/<code>; npm start's trusts in .flip/trusts/<code>/gateway.
      const candidates = trust ? [path.join(".flip", "gateway", trust), path.join(".flip", "trusts", trust, "gateway")] : [];
      const stateDir = stringOption(args, "state-dir") || process.env.FLIP_GATEWAY_STATE_DIR || candidates.find((d) => existsSync(path.join(d, "tasks.jsonl"))) || candidates[0] || "";
      if (!stateDir) throw new UsageError("give --state-dir or --trust");
      const project = stringOption(args, "project");
      const limit = Number(stringOption(args, "limit", "200"));
      const entries = readTaskLog(stateDir).filter((e) => !project || e.projectId === project).slice(-limit);
      ctx.print(
        entries.length === 0
          ? "no tasks recorded"
          : table(
              ["AT", "EVENT", "KIND", "TASK", "PROJECT", "DETAIL"],
              entries.map((e) => [e.at, e.event, e.kind, e.taskId, e.projectId ?? "-", e.error ? `${e.error.code}: ${e.error.message}` : e.reason ?? (e.durationMs !== undefined ? `${e.durationMs} ms` : "")]),
            ),
        { entries },
      );
    },
  },
];

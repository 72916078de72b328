import { AuditService, type AuditEntry } from "@flip/gen/flip/hub/v1/audit_pb.js";
import { AdminService } from "@flip/gen/flip/hub/v1/admin_pb.js";
import { stringOption, UsageError, type CliCommand } from "../command.js";
import { personLabel, table, when } from "../format.js";

const entryJson = (e: AuditEntry) => ({
  seq: Number(e.seq),
  at: when(e.at),
  actor: e.actor,
  actorPerson: e.actorPerson ? { userId: e.actorPerson.userId, email: e.actorPerson.email, name: e.actorPerson.name } : null,
  action: e.action,
  target: e.target,
  before: e.beforeJson ? JSON.parse(e.beforeJson) : null,
  after: e.afterJson ? JSON.parse(e.afterJson) : null,
  hash: e.hash,
});

export const auditCommands: CliCommand[] = [
  {
    path: ["audit", "verify"],
    summary: "Recompute the audit log's hash chain; names the first broken entry. Exit code 1 when broken.",
    usage: "",
    async run(ctx) {
      const r = await ctx.client(AuditService).verifyAuditChain({});
      ctx.print(
        r.ok ? `audit chain OK: ${r.entriesChecked} entries verified` : `audit chain BROKEN at entry ${r.firstBrokenSeq}: ${r.problem} (${r.entriesChecked} entries before it verified)`,
        { ok: r.ok, entriesChecked: Number(r.entriesChecked), firstBrokenSeq: Number(r.firstBrokenSeq), problem: r.problem },
      );
      return r.ok ? 0 : 1;
    },
  },
  {
    path: ["audit", "list"],
    summary: "List audit entries, oldest first, filtered by action prefix, target or actor.",
    usage: "[--action <prefix>] [--target <kind:id>] [--actor <actor>] [--limit N]",
    options: { action: { type: "string" }, target: { type: "string" }, actor: { type: "string" }, limit: { type: "string" } },
    async run(ctx, args) {
      const limit = Number(stringOption(args, "limit", "100"));
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new UsageError("--limit must be 1 to 500");
      const { entries } = await ctx.client(AuditService).listAuditEntries({
        actionPrefix: stringOption(args, "action"),
        target: stringOption(args, "target"),
        actor: stringOption(args, "actor"),
        page: { pageSize: limit },
      });
      ctx.print(
        entries.length === 0 ? "no audit entries" : table(["SEQ", "AT", "ACTOR", "ACTION", "TARGET"], entries.map((e) => [String(e.seq), when(e.at), personLabel(e.actorPerson, e.actor), e.action, e.target])),
        { entries: entries.map(entryJson) },
      );
    },
  },
  {
    path: ["admin", "deployment-mode"],
    summary: "Show deployment mode, or turn it on (pause new work) or off; says when it is safe to redeploy.",
    usage: "[on|off]",
    positionals: true,
    async run(ctx, args) {
      const [arg] = args.positionals;
      if (arg !== undefined && arg !== "on" && arg !== "off") throw new UsageError("say on, off, or nothing to show the current state");
      const client = ctx.client(AdminService);
      if (arg) await client.setDeploymentMode({ enabled: arg === "on" });
      const m = await client.getDeploymentMode({});
      ctx.print(
        `deployment mode: ${m.enabled ? "ON (new work paused)" : "off"}; running tasks: ${m.runningTasks}; running jobs: ${m.runningJobs}${m.enabled ? `; safe to redeploy: ${m.safeToRedeploy ? "yes" : "not yet"}` : ""}`,
        { enabled: m.enabled, safeToRedeploy: m.safeToRedeploy, runningTasks: m.runningTasks, runningJobs: m.runningJobs, changedBy: m.changedBy },
      );
    },
  },
  {
    path: ["admin", "rotate-signing-key"],
    summary:
      "Replace the key that signs access tokens on every hub replica. Tokens signed with the old key keep working until they expire, " +
      "unless --revoke-previous (for a leaked key: they are refused at once and clients refresh). Sessions and API tokens are not affected.",
    usage: "[--revoke-previous]",
    options: { "revoke-previous": { type: "boolean", default: false } },
    async run(ctx, args) {
      const revokePrevious = args.values["revoke-previous"] === true;
      const r = await ctx.client(AdminService).rotateSigningKey({ revokePrevious });
      ctx.print(
        `signing key rotated: new key ${r.keyId}; ` +
          (r.previousKeyId ? `tokens signed with ${r.previousKeyId} are accepted until they expire` : "tokens signed with the previous key are refused from now on"),
        { keyId: r.keyId, previousKeyId: r.previousKeyId || null },
      );
    },
  },
];

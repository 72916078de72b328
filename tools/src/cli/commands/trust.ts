import { TrustService, type Trust } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { LinkStatusSchema } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { toJson } from "@bufbuild/protobuf";
import { TrustSchema } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { requireOption, stringOption, UsageError, type CliCommand } from "../command.js";
import { table, when, valueLabel } from "../format.js";

function status(t: Trust): string {
  if (t.disabled) return "disabled";
  return valueLabel(LinkStatusSchema, t.linkStatus, "LINK_STATUS_");
}

const trustJson = (t: Trust | undefined) => (t ? toJson(TrustSchema, t) : null);

/** The one trust code or id a command names. */
export function oneTrust(positionals: string[]): string {
  const [ref] = positionals;
  if (!ref || positionals.length > 1) throw new UsageError("give exactly one trust code or id");
  return ref;
}

export const trustCommands: CliCommand[] = [
  {
    path: ["trust", "register"],
    summary: "Register a trust; prints its API key once (store it in the trust's gateway configuration).",
    usage: "--name <name> --code <code> [--region <region>]",
    options: { name: { type: "string" }, code: { type: "string" }, region: { type: "string" } },
    async run(ctx, args) {
      const res = await ctx.client(TrustService).registerTrust({
        name: requireOption(args, "name"),
        code: requireOption(args, "code"),
        region: stringOption(args, "region"),
      });
      ctx.print(
        `registered trust ${res.trust?.code} (${res.trust?.id})\nAPI key (shown once; give it to the trust's operator):\n  ${res.apiKey}`,
        { trust: trustJson(res.trust), apiKey: res.apiKey },
      );
    },
  },
  {
    path: ["trust", "list"],
    summary: "List trusts with their link status and when they were last seen.",
    usage: "[--all]",
    options: { all: { type: "boolean", default: false } },
    async run(ctx, args) {
      const trusts: Trust[] = [];
      let pageToken = "";
      do {
        const res = await ctx.client(TrustService).listTrusts({ includeDisabled: Boolean(args.values.all), page: { pageSize: 500, pageToken } });
        trusts.push(...res.trusts);
        pageToken = res.page?.nextPageToken ?? "";
      } while (pageToken);
      ctx.print(
        trusts.length === 0
          ? "no trusts registered (flip trust register --name ... --code ...)"
          : table(["CODE", "NAME", "REGION", "STATUS", "LAST SEEN", "KEY ID"], trusts.map((t) => [t.code, t.name, t.region || "-", status(t), when(t.lastSeenAt), t.keyId])),
        { trusts: trusts.map(trustJson) },
      );
    },
  },
  {
    path: ["trust", "get"],
    summary: "Show one trust, with its last health snapshot.",
    usage: "<code|id>",
    positionals: true,
    async run(ctx, args) {
      const { trust } = await ctx.client(TrustService).getTrust({ trust: oneTrust(args.positionals) });
      const services = trust?.health?.services.map((s) => `${s.name}=${s.state}`).join(", ") || "-";
      const gpus = trust?.health?.gpus.map((g) => `${g.index}:${g.name}`).join(", ") || "none";
      const l = trust?.link;
      const link = l ? `linked since ${when(l.connectedAt)} on hub replica ${l.hubInstance} (${l.gatewayVersion}${l.gateway ? `, gateway ${l.gateway}` : ""})` : "none";
      const refused = l && l.refusedAttempts > 0
        ? `\nWARNING: another gateway of this trust tried to link ${l.refusedAttempts} time(s), last ${l.lastRefusedGateway || "unnamed"} at ${when(l.lastRefusedAt)}; it was refused: stop whichever should not run`
        : "";
      ctx.print(
        `${trust?.code}  ${trust?.name}\nstatus: ${trust ? status(trust) : "-"}  last seen: ${when(trust?.lastSeenAt)}\nlink: ${link}${refused}\nservices: ${services}\ngpus: ${gpus}`,
        { trust: trustJson(trust) },
      );
    },
  },
  {
    path: ["trust", "rotate-key"],
    summary: "Issue a new API key for a trust; the old key stops working at once.",
    usage: "<code|id>",
    positionals: true,
    async run(ctx, args) {
      const res = await ctx.client(TrustService).rotateTrustKey({ trust: oneTrust(args.positionals) });
      ctx.print(`new API key for ${res.trust?.code} (shown once):\n  ${res.apiKey}`, { trust: trustJson(res.trust), apiKey: res.apiKey });
    },
  },
  {
    path: ["trust", "disable"],
    summary: "Disable a trust: its key is refused and its open link is closed.",
    usage: "<code|id> [--reason <text>]",
    positionals: true,
    options: { reason: { type: "string" } },
    async run(ctx, args) {
      const { trust } = await ctx.client(TrustService).disableTrust({ trust: oneTrust(args.positionals), reason: stringOption(args, "reason") });
      ctx.print(`trust ${trust?.code} disabled`, { trust: trustJson(trust) });
    },
  },
  {
    path: ["trust", "enable"],
    summary: "Re-enable a disabled trust (its current key works again).",
    usage: "<code|id>",
    positionals: true,
    async run(ctx, args) {
      const { trust } = await ctx.client(TrustService).enableTrust({ trust: oneTrust(args.positionals) });
      ctx.print(`trust ${trust?.code} enabled`, { trust: trustJson(trust) });
    },
  },
];

import { toJson } from "@bufbuild/protobuf";
import { ApiTokenSchema, AuthService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { stringOption, UsageError, type CliCommand } from "../command.js";
import { table, when } from "../format.js";

export const tokenCommands: CliCommand[] = [
  {
    path: ["token", "create"],
    summary: "Create a personal API token for scripts; the secret is printed once.",
    usage: "--name <name> [--ttl-days <days>]",
    options: { name: { type: "string" }, "ttl-days": { type: "string" } },
    async run(ctx, args) {
      const ttl = stringOption(args, "ttl-days");
      if (ttl !== "" && !/^\d+$/.test(ttl)) throw new UsageError("--ttl-days must be a whole number of days");
      const { token, secret } = await ctx.client(AuthService).createApiToken({ name: stringOption(args, "name"), ttlDays: ttl === "" ? 0 : Number(ttl) });
      ctx.print(`token "${token?.name}" (${token?.id}), expires ${when(token?.expiresAt)}\nsecret (shown once; send it as 'Authorization: Bearer <secret>' or FLIP_TOKEN):\n  ${secret}`, {
        token: token ? toJson(ApiTokenSchema, token) : null,
        secret,
      });
    },
  },
  {
    path: ["token", "list"],
    summary: "List your API tokens (never their secrets).",
    usage: "",
    async run(ctx) {
      const { tokens } = await ctx.client(AuthService).listApiTokens({});
      ctx.print(
        tokens.length === 0
          ? "no API tokens (flip token create --name ...)"
          : table(
              ["ID", "NAME", "CREATED", "EXPIRES", "LAST USED", "STATE"],
              tokens.map((t) => [t.id, t.name, when(t.createdAt), when(t.expiresAt), when(t.lastUsedAt), t.revoked ? "revoked" : "active"]),
            ),
        { tokens: tokens.map((t) => toJson(ApiTokenSchema, t)) },
      );
    },
  },
  {
    path: ["token", "revoke"],
    summary: "Revoke one of your API tokens (admins: anyone's).",
    usage: "<token-id>",
    positionals: true,
    async run(ctx, args) {
      const [id] = args.positionals;
      if (!id || args.positionals.length > 1) throw new UsageError("give exactly one token id (from flip token list)");
      await ctx.client(AuthService).revokeApiToken({ tokenId: id });
      ctx.print(`token ${id} revoked`, { tokenId: id, revoked: true });
    },
  },
];

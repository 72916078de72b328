import { randomBytes } from "node:crypto";
import { toJson } from "@bufbuild/protobuf";
import { Role, UserSchema, UserService, type User } from "@flip/gen/flip/hub/v1/users_pb.js";
import { requireOption, stringOption, UsageError, type CliArgs, type CliCommand } from "../command.js";
import { table, when } from "../format.js";
import { askHidden, readStdin } from "../prompt.js";
import { rolesText } from "./login.js";

const ROLES: Record<string, Role> = { admin: Role.ADMIN, researcher: Role.RESEARCHER, viewer: Role.VIEWER, "trust-admin": Role.TRUST_ADMIN };

/** "admin", "researcher", "viewer" or "trust-admin:<trust code or id>". */
export function parseRole(text: string): { role: Role; trustId: string } {
  const [name = "", trust = ""] = text.split(/:(.*)/s);
  const role = ROLES[name.toLowerCase()];
  if (role === undefined) throw new UsageError(`unknown role "${text}": use admin, researcher, viewer or trust-admin:<trust>`);
  if (role === Role.TRUST_ADMIN && trust === "") throw new UsageError("trust-admin needs its trust: trust-admin:<trust code or id>");
  return { role, trustId: trust };
}

const userJson = (u: User | undefined) => (u ? toJson(UserSchema, u) : null);

function oneUser(args: CliArgs, more = 0): string[] {
  if (args.positionals.length !== 1 + more) throw new UsageError(more ? "give the user (email or id) and the role" : "give exactly one user (email or id)");
  return args.positionals;
}

/** The new user's password: --password-stdin, a generated one (printed once), or typed twice. */
async function newPassword(args: CliArgs): Promise<{ password: string; generated: boolean }> {
  if (args.values["password-stdin"]) return { password: await readStdin(), generated: false };
  if (args.values["generate-password"]) return { password: randomBytes(15).toString("base64url"), generated: true };
  const alternative = "use --password-stdin or --generate-password";
  const first = await askHidden("new user's password: ", alternative);
  if ((await askHidden("again: ", alternative)) !== first) throw new UsageError("the passwords differ");
  return { password: first, generated: false };
}

function showUser(u: User | undefined): string {
  if (!u) return "-";
  const totp = u.totpEnrolled ? "enrolled" : u.totpRequired ? "required, not enrolled" : "off";
  return [
    `${u.email}${u.name ? ` (${u.name})` : ""}  ${u.id}`,
    `roles: ${rolesText(u)}`,
    `state: ${u.disabled ? "disabled" : "active"}  TOTP: ${totp}${u.oidcSubject ? `  SSO subject: ${u.oidcSubject}` : ""}`,
  ].join("\n");
}

export const userCommands: CliCommand[] = [
  {
    path: ["user", "create"],
    summary: "Create a user (Admin; or FLIP_ADMIN_TOKEN for the very first Admin). Roles: admin, researcher, viewer, trust-admin:<trust>.",
    usage: "--email <email> [--name <name>] [--role <role>]... [--password-stdin | --generate-password] [--totp-required] [--oidc-subject <sub>]",
    options: {
      email: { type: "string" },
      name: { type: "string" },
      role: { type: "string", multiple: true },
      "password-stdin": { type: "boolean", default: false },
      "generate-password": { type: "boolean", default: false },
      "totp-required": { type: "boolean", default: false },
      "oidc-subject": { type: "string" },
    },
    async run(ctx, args) {
      const email = requireOption(args, "email");
      const roles = ((args.values.role as string[] | undefined) ?? []).map(parseRole);
      const oidcSubject = stringOption(args, "oidc-subject");
      const ssoOnly = oidcSubject !== "" && !args.values["password-stdin"] && !args.values["generate-password"];
      const { password, generated } = ssoOnly ? { password: "", generated: false } : await newPassword(args);
      const { user } = await ctx.client(UserService).createUser({
        email,
        name: stringOption(args, "name"),
        password,
        roles,
        totpRequired: Boolean(args.values["totp-required"]),
        oidcSubject,
      });
      ctx.print(`created ${showUser(user)}${generated ? `\ninitial password (shown once; give it to the user):\n  ${password}` : ""}`, {
        user: userJson(user),
        ...(generated ? { password } : {}),
      });
    },
  },
  {
    path: ["user", "list"],
    summary: "List users with their roles (Admin).",
    usage: "",
    async run(ctx) {
      const users: User[] = [];
      let pageToken = "";
      do {
        const res = await ctx.client(UserService).listUsers({ page: { pageSize: 500, pageToken } });
        users.push(...res.users);
        pageToken = res.page?.nextPageToken ?? "";
      } while (pageToken);
      ctx.print(
        table(
          ["EMAIL", "NAME", "ROLES", "STATE", "TOTP", "CREATED"],
          users.map((u) => [u.email, u.name || "-", rolesText(u), u.disabled ? "disabled" : "active", u.totpEnrolled ? "yes" : u.totpRequired ? "required" : "no", when(u.createdAt)]),
        ),
        { users: users.map(userJson) },
      );
    },
  },
  {
    path: ["user", "get"],
    summary: "Show one user (Admin, or yourself).",
    usage: "<email|id>",
    positionals: true,
    async run(ctx, args) {
      const [ref] = oneUser(args);
      const { user } = await ctx.client(UserService).getUser({ user: ref });
      ctx.print(showUser(user), { user: userJson(user) });
    },
  },
  {
    path: ["user", "grant"],
    summary: "Grant a role (Admin): admin, researcher, viewer or trust-admin:<trust>.",
    usage: "<email|id> <role>",
    positionals: true,
    async run(ctx, args) {
      const [ref, role] = oneUser(args, 1);
      const { user } = await ctx.client(UserService).grantRole({ user: ref, grant: parseRole(role!) });
      ctx.print(`${user?.email}: ${rolesText(user)}`, { user: userJson(user) });
    },
  },
  {
    path: ["user", "revoke"],
    summary: "Revoke a role (Admin); the last Admin keeps theirs.",
    usage: "<email|id> <role>",
    positionals: true,
    async run(ctx, args) {
      const [ref, role] = oneUser(args, 1);
      const { user } = await ctx.client(UserService).revokeRole({ user: ref, grant: parseRole(role!) });
      ctx.print(`${user?.email}: ${rolesText(user)}`, { user: userJson(user) });
    },
  },
  {
    path: ["user", "disable"],
    summary: "Disable a user (Admin): ends their sessions and revokes their API tokens.",
    usage: "<email|id>",
    positionals: true,
    async run(ctx, args) {
      const [ref] = oneUser(args);
      const { user } = await ctx.client(UserService).setUserDisabled({ user: ref, disabled: true });
      ctx.print(`${user?.email} disabled`, { user: userJson(user) });
    },
  },
  {
    path: ["user", "enable"],
    summary: "Re-enable a disabled user (Admin).",
    usage: "<email|id>",
    positionals: true,
    async run(ctx, args) {
      const [ref] = oneUser(args);
      const { user } = await ctx.client(UserService).setUserDisabled({ user: ref, disabled: false });
      ctx.print(`${user?.email} enabled`, { user: userJson(user) });
    },
  },
  {
    path: ["user", "reset-totp"],
    summary: "Clear a user's TOTP enrolment and end their sessions (Admin), e.g. after a lost phone.",
    usage: "<email|id>",
    positionals: true,
    async run(ctx, args) {
      const [ref] = oneUser(args);
      const { user } = await ctx.client(UserService).resetTotp({ user: ref });
      ctx.print(`${user?.email}: TOTP reset${user?.totpRequired ? "; they will enrol again at their next sign-in" : ""}`, { user: userJson(user) });
    },
  },
  {
    path: ["user", "require-totp"],
    summary: "Require TOTP for a user (Admin); --off waives it.",
    usage: "<email|id> [--off]",
    positionals: true,
    options: { off: { type: "boolean", default: false } },
    async run(ctx, args) {
      const [ref] = oneUser(args);
      const { user } = await ctx.client(UserService).setTotpRequired({ user: ref, required: !args.values.off });
      ctx.print(`${user?.email}: TOTP ${user?.totpRequired ? "required" : "not required"}`, { user: userJson(user) });
    },
  },
];

import * as os from "node:os";
import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthService, Role, UserSchema, type LoginResponse, type User } from "@flip/gen/flip/hub/v1/users_pb.js";
import { stringOption, UsageError, type CliArgs, type CliCommand, type CliContext } from "../command.js";
import { credentialsPath, deleteCredentials, readCredentials, writeCredentials } from "../credentials.js";
import { when } from "../format.js";
import { ask, askHidden, readStdin } from "../prompt.js";

/** The error metadata key the hub sets when a sign-in needs a TOTP code (services/hub/src/identity/errors.ts). */
const TOTP_REQUIRED_HEADER = "flip-totp-required";

export function rolesText(u: User | undefined): string {
  const roles = u?.roles.map((r) => (r.role === Role.TRUST_ADMIN ? `trust-admin:${r.trustId}` : Role[r.role].toLowerCase())) ?? [];
  return roles.length ? roles.join(", ") : "none";
}

/** The password from --password-stdin, FLIP_PASSWORD, or a hidden prompt, in that order. */
async function password(ctx: CliContext, args: CliArgs): Promise<string> {
  if (args.values["password-stdin"]) return await readStdin();
  if (ctx.env.FLIP_PASSWORD) return ctx.env.FLIP_PASSWORD;
  return await askHidden("password: ", "use --password-stdin or FLIP_PASSWORD");
}

/** Signs in with email and password, asking for a TOTP code when the hub wants one. */
async function signIn(ctx: CliContext, args: CliArgs, email: string): Promise<LoginResponse> {
  const auth = ctx.clientAs(AuthService, undefined);
  const pw = await password(ctx, args);
  const totp = stringOption(args, "totp");
  try {
    return await auth.login({ email, password: pw, totpCode: totp });
  } catch (e) {
    const err = ConnectError.from(e);
    if (err.code !== Code.Unauthenticated || err.metadata.get(TOTP_REQUIRED_HEADER) !== "true" || totp) throw e;
    const code = await ask("TOTP code: ", "pass --totp <code>");
    return await auth.login({ email, password: pw, totpCode: code });
  }
}

/** Walks a user through TOTP enrolment when an admin requires it and they have not enrolled. */
async function enrolTotp(ctx: CliContext, accessToken: string): Promise<void> {
  const auth = ctx.clientAs(AuthService, accessToken);
  const { secretBase32, otpauthUri } = await auth.beginTotpEnrollment({});
  ctx.stderr.write(
    `An admin requires a second factor for this account. Add this secret to an authenticator app:\n  ${secretBase32}\n  (or as a URI: ${otpauthUri})\n`,
  );
  const code = await ask("code shown by the app: ", "sign in once from a terminal to enrol TOTP");
  await auth.confirmTotpEnrollment({ code });
  ctx.stderr.write("TOTP enrolled; sign-ins will ask for a code from now on.\n");
}

function tokenName(args: CliArgs): string {
  return stringOption(args, "token-name") || `flip CLI on ${os.hostname()}`.slice(0, 64);
}

function ttlDays(args: CliArgs): number {
  const raw = stringOption(args, "ttl-days");
  if (raw === "") return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError("--ttl-days must be a whole number of days");
  return n;
}

export const loginCommands: CliCommand[] = [
  {
    path: ["login"],
    summary:
      "Sign in and store an API token for later commands (in $FLIP_CONFIG_DIR or ~/.config/flip, mode 0600). " +
      "With --sso-token, exchange an access token from the single sign-on provider instead of a password.",
    usage: "[--email <email>] [--password-stdin] [--totp <code>] [--sso-token <token>] [--token-name <name>] [--ttl-days <days>]",
    options: {
      email: { type: "string" },
      "password-stdin": { type: "boolean", default: false },
      totp: { type: "string" },
      "sso-token": { type: "string" },
      "token-name": { type: "string" },
      "ttl-days": { type: "string" },
    },
    async run(ctx, args) {
      let bearer: string;
      let refreshToken: string | undefined;
      const sso = stringOption(args, "sso-token");
      if (sso) {
        bearer = sso;
      } else {
        const email = stringOption(args, "email") || (await ask("email: ", "pass --email <email>"));
        const session = await signIn(ctx, args, email);
        if (session.user?.totpRequired && !session.user.totpEnrolled) await enrolTotp(ctx, session.accessToken);
        bearer = session.accessToken;
        refreshToken = session.refreshToken;
      }
      const auth = ctx.clientAs(AuthService, bearer);
      const { user } = await auth.whoAmI({});
      const created = await auth.createApiToken({ name: tokenName(args), ttlDays: ttlDays(args) });
      // The session only served to mint the API token; end it rather than leave it open.
      if (refreshToken) await ctx.clientAs(AuthService, undefined).logout({ refreshToken });
      const file = writeCredentials(
        { hubUrl: ctx.hubUrl, token: created.secret, kind: "api-token", email: user?.email, tokenId: created.token?.id },
        ctx.env,
      );
      ctx.print(`signed in to ${ctx.hubUrl} as ${user?.email} (${rolesText(user)}); token "${created.token?.name}" stored in ${file}, expires ${when(created.token?.expiresAt)}`, {
        user: user ? toJson(UserSchema, user) : null,
        credentials: file,
        tokenId: created.token?.id,
      });
    },
  },
  {
    path: ["logout"],
    summary: "Revoke the stored API token at the hub and delete it locally.",
    usage: "",
    async run(ctx) {
      const stored = readCredentials(ctx.env);
      if (!stored) {
        ctx.print("not signed in", { signedIn: false });
        return;
      }
      if (stored.kind === "api-token" && stored.tokenId) {
        try {
          await ctx.clientAs(AuthService, stored.token).revokeApiToken({ tokenId: stored.tokenId });
        } catch (e) {
          ctx.stderr.write(`warning: could not revoke the token at the hub (${ConnectError.from(e).rawMessage}); deleting it locally anyway\n`);
        }
      }
      deleteCredentials(ctx.env);
      ctx.print(`signed out; removed ${credentialsPath(ctx.env)}`, { signedIn: false });
    },
  },
  {
    path: ["whoami"],
    summary: "Show who the hub thinks you are, your roles, and how you signed in.",
    usage: "",
    async run(ctx) {
      const { user, authMethod } = await ctx.client(AuthService).whoAmI({});
      if (!user) {
        ctx.print(`bootstrap admin token (create the first Admin with: flip user create --email <email> --role admin)`, { authMethod });
        return;
      }
      const totp = user.totpEnrolled ? "enrolled" : user.totpRequired ? "required, not enrolled" : "off";
      ctx.print(`${user.email}${user.name ? ` (${user.name})` : ""}\nroles: ${rolesText(user)}\nsigned in with: ${authMethod}\nTOTP: ${totp}`, {
        user: toJson(UserSchema, user),
        authMethod,
      });
    },
  },
];

import { randomBytes } from "node:crypto";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { DescService } from "@bufbuild/protobuf";
import { AuthService, Role, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import type { DemoState } from "./demo-state.js";
import { demoTrusts } from "./demo-trusts.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";

/** A demo person: who they are, their password (for the console), and the API token the demo itself acts with. */
export interface DemoAccount {
  email: string;
  token: string;
  /** Absent in demo state written before the console existed: that password was printed once. */
  password?: string;
}

export interface DemoAccounts {
  admin: DemoAccount;
  researcher: DemoAccount;
  /** Trust Admin per trust code. */
  trustAdmins: Map<string, DemoAccount>;
  /** Accounts created by this run. */
  created: { email: string; password: string; role: string }[];
}

/** Every demo person with what they do, admin first, for the sign-in table. */
export function demoPeople(a: DemoAccounts): (DemoAccount & { role: string })[] {
  return [
    { ...a.admin, role: "Admin" },
    { ...a.researcher, role: "Researcher" },
    ...[...a.trustAdmins].map(([code, account]) => ({ ...account, role: `Trust Admin of ${code}` })),
  ];
}

export function authedClient<S extends DescService>(hubUrl: string, service: S, token: string): Client<S> {
  return createClient(service, createGrpcTransport({ baseUrl: hubUrl, interceptors: [bearerAuth(token)] }));
}

const password = () => `demo-${randomBytes(12).toString("base64url")}`;

/**
 * Creates the demo's people on first run: an Admin (with the bootstrap token, which the hub then
 * refuses), a Researcher, and a Trust Admin per demo trust. Their passwords (for the console) and API
 * tokens (for the demo itself) are kept in the demo's state (0600 files), so every run can print them.
 */
export async function ensureDemoAccounts(hubUrl: string, bootstrapToken: string, state: DemoState): Promise<DemoAccounts> {
  const stored = state.read("accounts.json");
  if (stored) {
    const a = JSON.parse(stored) as { admin: DemoAccount; researcher: DemoAccount; trustAdmins: [string, DemoAccount][] };
    return { admin: a.admin, researcher: a.researcher, trustAdmins: new Map(a.trustAdmins), created: [] };
  }
  const created: DemoAccounts["created"] = [];
  const create = async (token: string, email: string, role: string, roles: { role: Role; trustId?: string }[]): Promise<DemoAccount> => {
    const pw = password();
    await authedClient(hubUrl, UserService, token).createUser({ email, name: email.split("@")[0]!, password: pw, roles: roles.map((r) => ({ role: r.role, trustId: r.trustId ?? "" })) });
    created.push({ email, password: pw, role });
    const session = await createClient(AuthService, createGrpcTransport({ baseUrl: hubUrl })).login({ email, password: pw });
    const { secret } = await authedClient(hubUrl, AuthService, session.accessToken).createApiToken({ name: "flip demo", ttlDays: 365 });
    return { email, token: secret, password: pw };
  };
  const admin = await create(bootstrapToken, "admin@flip.demo", "Admin", [{ role: Role.ADMIN }]);
  const researcher = await create(admin.token, "researcher@flip.demo", "Researcher", [{ role: Role.RESEARCHER }]);
  const trustAdmins = new Map<string, DemoAccount>();
  for (const t of demoTrusts) {
    trustAdmins.set(t.code, await create(admin.token, `governance@${t.code}.flip.demo`, `Trust Admin of ${t.code}`, [{ role: Role.TRUST_ADMIN, trustId: t.code }]));
  }
  state.write("accounts.json", JSON.stringify({ admin, researcher, trustAdmins: [...trustAdmins] }, null, 2));
  return { admin, researcher, trustAdmins, created };
}

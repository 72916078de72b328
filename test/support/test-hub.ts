import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService, Role, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { readHubConfig } from "@flip/hub/config.js";
import { startHub, type RunningHub } from "@flip/hub/hub.js";
import { createLogger, type Logger } from "@flip/shared/logging/logger.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";

export const BOOTSTRAP_TOKEN = "bootstrap-admin-token-for-tests";
export const PASSWORD = "correct horse battery staple 42";

/** A hub started in this process on a fresh database, with helpers to act as different users. */
export interface TestHub {
  hub: RunningHub;
  db: TestDatabase;
  /** A typed client authenticated with `token` (none: anonymous). */
  client<S extends DescService>(service: S, token?: string): Client<S>;
  /** Creates a user with roles (as `adminToken`) and signs them in; returns their access token. */
  user(adminToken: string, email: string, roles: { role: Role; trust?: string }[]): Promise<{ id: string; token: string }>;
  registerTrust(code: string): Promise<{ id: string; apiKey: string }>;
  /** Creates the first Admin with the bootstrap token and signs in. */
  firstAdmin(): Promise<{ id: string; token: string }>;
  /** Stops the hub (as a crash would leave its database: nothing is cleaned up) and starts it again on the same port, database and data. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** `log`: where the hub logs (default: silent unless FLIP_TEST_LOG_LEVEL says otherwise). */
export async function startTestHub(env: Record<string, string> = {}, log: Logger = createLogger({ service: "hub", level: process.env.FLIP_TEST_LOG_LEVEL ?? "silent" })): Promise<TestHub> {
  const db = await createTestDatabase("hub");
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "flip-hub-"));
  const config = readHubConfig({ DATABASE_URL: db.url, FLIP_HUB_ADDR: "127.0.0.1:0", FLIP_ADMIN_TOKEN: BOOTSTRAP_TOKEN, FLIP_HUB_DATA_DIR: dataDir, ...env });
  let hub = await startHub(config, log);
  const transport = createGrpcTransport({ baseUrl: hub.url });
  const client = <S extends DescService>(service: S, token?: string) =>
    createClient(
      service,
      token
        ? createGrpcTransport({ baseUrl: hub.url, interceptors: [bearerAuth(token)] })
        : transport,
    );
  const signIn = async (email: string) => (await client(AuthService).login({ email, password: PASSWORD })).accessToken;
  const self: TestHub = {
    hub,
    db,
    client,
    async user(adminToken, email, roles) {
      const { user } = await client(UserService, adminToken).createUser({
        email,
        name: email.split("@")[0]!,
        password: PASSWORD,
        roles: roles.map((r) => ({ role: r.role, trustId: r.trust ?? "" })),
      });
      return { id: user!.id, token: await signIn(email) };
    },
    async registerTrust(code) {
      const res = await client(TrustService, BOOTSTRAP_TOKEN).registerTrust({ name: `${code} hospital`, code, region: "test" });
      return { id: res.trust!.id, apiKey: res.apiKey };
    },
    async firstAdmin() {
      const { user } = await client(UserService, BOOTSTRAP_TOKEN).createUser({ email: "admin@hub.test", name: "Admin", password: PASSWORD, roles: [{ role: Role.ADMIN }] });
      return { id: user!.id, token: await signIn("admin@hub.test") };
    },
    async restart() {
      await hub.close();
      hub = await startHub({ ...config, port: hub.port }, log);
      self.hub = hub;
    },
    async close() {
      await hub.close();
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return self;
}

import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { readHubConfig } from "../config.js";
import { startHub, type RunningHub } from "../hub.js";

/** A real hub, in this process, on a fresh database, for the identity integration tests. */
export interface TestHub {
  db: TestDatabase;
  hub: RunningHub;
  /** Clients that send `token` (or nothing) as the bearer token, over gRPC on HTTP/2. */
  as(token?: string): HubClients;
  close(): Promise<void>;
}

export interface HubClients {
  auth: Client<typeof AuthService>;
  users: Client<typeof UserService>;
  trusts: Client<typeof TrustService>;
}

export const BOOTSTRAP_TOKEN = "bootstrap-admin-token-for-tests";

export async function startTestHub(env: Record<string, string> = {}): Promise<TestHub> {
  const db = await createTestDatabase("identity");
  const config = readHubConfig({ DATABASE_URL: db.url, FLIP_HUB_ADDR: "127.0.0.1:0", FLIP_ADMIN_TOKEN: BOOTSTRAP_TOKEN, ...env });
  const hub = await startHub(config, createLogger({ service: "hub", level: process.env.FLIP_TEST_HUB_LOG ?? "silent" }));
  return {
    db,
    hub,
    as(token) {
      const bearer: Interceptor = (next) => (req) => {
        if (token) req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      };
      const transport = createGrpcTransport({ baseUrl: hub.url, interceptors: [bearer] });
      return { auth: createClient(AuthService, transport), users: createClient(UserService, transport), trusts: createClient(TrustService, transport) };
    },
    async close() {
      await hub.close();
      await db.drop();
    },
  };
}

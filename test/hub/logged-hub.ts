import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Writable } from "node:stream";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { AuthService, Role, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";
import { readHubConfig } from "@flip/hub/config.js";
import { startHub, type RunningHub } from "@flip/hub/hub.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";

export const BOOTSTRAP_TOKEN = "bootstrap-admin-token-for-input-tests";

/** One JSON log line the hub wrote. */
export interface LogLine {
  level: number;
  msg: string;
  err?: { stack?: string };
  [k: string]: unknown;
}

/** pino's number for "error". */
export const ERROR_LEVEL = 50;

/** A hub in this process on a fresh database, whose log lines the test can read. */
export interface LoggedHub {
  hub: RunningHub;
  lines: LogLine[];
  /** An Admin's API token (the bootstrap token stops working once an Admin exists) and a trust's API key. */
  adminToken: string;
  trustKey: string;
  close(): Promise<void>;
}

export async function startLoggedHub(): Promise<LoggedHub> {
  const db: TestDatabase = await createTestDatabase("hub");
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "flip-hub-input-"));
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const log = createLogger({ service: "hub", level: "info", destination });
  const config = readHubConfig({ DATABASE_URL: db.url, FLIP_HUB_ADDR: "127.0.0.1:0", FLIP_ADMIN_TOKEN: BOOTSTRAP_TOKEN, FLIP_HUB_DATA_DIR: dataDir });
  const hub = await startHub(config, log);
  const as = (token?: string) => createGrpcTransport({ baseUrl: hub.url, interceptors: token ? [bearerAuth(token)] : [] });
  const email = "fuzz-admin@input.test";
  const password = "a long and unguessable test password";
  await createClient(UserService, as(BOOTSTRAP_TOKEN)).createUser({ email, name: "Admin", password, roles: [{ role: Role.ADMIN }] });
  const { accessToken } = await createClient(AuthService, as()).login({ email, password });
  // An API token, not the session: a fuzzed RotateSigningKey may revoke the key that signed the session.
  const { secret } = await createClient(AuthService, as(accessToken)).createApiToken({ name: "input tests", ttlDays: 1 });
  const { apiKey } = await createClient(TrustService, as(secret)).registerTrust({ name: "North hospital", code: "north", region: "test" });
  return {
    hub,
    lines,
    adminToken: secret,
    trustKey: apiKey,
    async close() {
      await hub.close();
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

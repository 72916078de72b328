import { Writable } from "node:stream";
import { AuthService } from "@flip/gen/flip/hub/v1/users_pb.js";
import type { RunningHub } from "@flip/hub/hub.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { startTestHub } from "../support/test-hub.js";

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
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const test = await startTestHub({}, createLogger({ service: "hub", level: "info", destination }));
  // Registered with the bootstrap token, which stops working once the first Admin exists.
  const { apiKey } = await test.registerTrust("north");
  const admin = await test.firstAdmin();
  // An API token, not the session: a fuzzed RotateSigningKey may revoke the key that signed the session.
  const { secret } = await test.client(AuthService, admin.token).createApiToken({ name: "input tests", ttlDays: 1 });
  return { hub: test.hub, lines, adminToken: secret, trustKey: apiKey, close: () => test.close() };
}

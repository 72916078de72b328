import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import test from "ava";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@flip/gen/health/v1/health_pb.js";
import { createLogger } from "../logging/logger.js";
import { serve } from "./serve.js";
import { MAX_SOCKET_PATH_BYTES } from "./unix-socket-path.js";

const log = createLogger({ service: "test", level: "silent" });

test("a socket path longer than a unix socket allows (a deep checkout) is still served, in its own directory", async (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), "flip-deep-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dir = path.join(root, "a-checkout-under-a-long-home-directory", ".flip", "trusts", "north", "gateway", "training", "cc11b717-a263-4f24-8fdd-832e3de0e711", "runtime");
  mkdirSync(dir, { recursive: true });
  const socketPath = path.join(dir, "runtime.sock");
  t.true(Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES, "the path is too long to bind as it is");

  const server = await serve({ path: socketPath, services: [], routes: () => undefined, log });
  t.teardown(() => server.close(0));
  t.true(lstatSync(socketPath).isSocket(), "the socket is in its own directory, where a container's bind mount sees it");
  t.true(Buffer.byteLength(server.path!) <= MAX_SOCKET_PATH_BYTES);
  const health = createClient(Health, createConnectTransport({ baseUrl: "http://localhost", httpVersion: "1.1", nodeOptions: { socketPath: server.path! } }));
  t.is((await health.check({})).status, Status.SERVING);

  const alias = path.dirname(path.dirname(server.path!));
  await server.close(0);
  t.false(existsSync(alias), "the short alias is removed when the server stops");
});

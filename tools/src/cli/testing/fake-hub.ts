import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { ExecutionContext } from "ava";

/**
 * Serves fake hub services (registered by `routes`) over h2c on a free port until the test ends; returns
 * the environment that points `flip` at it, with its config in `t.context.dir`.
 */
export async function serveFakeHub(t: ExecutionContext<{ dir: string }>, routes: (router: ConnectRouter) => void): Promise<NodeJS.ProcessEnv> {
  const server = http2.createServer(connectNodeAdapter({ routes }));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(async () => {
    for (const s of sessions) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { FLIP_HUB_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, FLIP_CONFIG_DIR: t.context.dir, FLIP_TOKEN: "flip_user_test" };
}

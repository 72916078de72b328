import { timingSafeEqual } from "node:crypto";
import { chmod } from "node:fs/promises";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { RuntimeService } from "@flip/gen/flip/runtime/v1/runtime_pb.js";
import { serve, type RunningServer } from "@flip/shared/server/serve.js";
import { createRuntimeService, type RuntimeServiceDeps } from "./runtime-service.js";

/**
 * Serves a job's runtime API on its socket (`<workspace>/runtime/runtime.sock`): Connect, gRPC and
 * gRPC-Web over HTTP/1.1 and h2c, every call (health and reflection included) only with the job's token.
 * The socket is connectable by the workload's user; the token is what keeps anyone else out.
 */
export async function startRuntimeServer(deps: RuntimeServiceDeps): Promise<RunningServer> {
  const socketPath = deps.job.workspace.socketPath;
  const server = await serve({
    path: socketPath,
    services: [RuntimeService],
    routes: (router) => router.service(RuntimeService, createRuntimeService(deps)),
    log: deps.log,
    interceptors: [requireToken(deps.job.token)],
  });
  await chmod(socketPath, 0o666);
  return server;
}

/** Refuses a call without `Authorization: Bearer <token>`. */
export function requireToken(token: string): Interceptor {
  const expected = Buffer.from(`Bearer ${token}`);
  return (next) => async (req) => {
    const got = Buffer.from(req.header.get("authorization") ?? "");
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
      throw new ConnectError("present the job's token: Authorization: Bearer $FLIP_RUNTIME_TOKEN", Code.Unauthenticated);
    }
    return await next(req);
  };
}

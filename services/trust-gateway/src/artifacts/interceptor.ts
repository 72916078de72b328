import type { Interceptor } from "@connectrpc/connect";

/** Sends the trust API key on every call, as the hub's ArtifactService expects. */
export function trustKeyInterceptor(apiKey: string): Interceptor {
  return (next) => async (req) => {
    req.header.set("authorization", `Bearer ${apiKey}`);
    return await next(req);
  };
}

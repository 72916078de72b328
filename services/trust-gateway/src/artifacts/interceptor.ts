import type { Interceptor } from "@connectrpc/connect";
import { bearerAuth } from "@flip/shared/auth/bearer.js";

/** Sends the trust API key on every call, as the hub's ArtifactService expects. */
export function trustKeyInterceptor(apiKey: string): Interceptor {
  return bearerAuth(apiKey);
}

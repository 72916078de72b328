import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { bearerToken, constantTimeEqual } from "@flip/shared/auth/keys.js";

/**
 * Requires the trust-internal service key (`Authorization: Bearer <key>`) on every method of `service`.
 * Health and reflection stay open so that probes work without the key.
 */
export function requireInternalKey(key: string, service: DescService): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName === service.typeName) {
      const presented = bearerToken(req.header);
      if (presented === undefined || !constantTimeEqual(presented, key)) {
        throw new ConnectError("a valid trust-internal service key is required", Code.Unauthenticated);
      }
    }
    return await next(req);
  };
}

import { randomUUID } from "node:crypto";
import * as os from "node:os";

/**
 * The request header naming this gateway process to the hub (the hub reads it in
 * services/hub/src/link/gateway-identity.ts). The hub keeps the trust's established gateway linked and
 * refuses another process of the same trust while that one is alive, instead of letting the two
 * replace each other forever; the same process reconnecting is not refused.
 */
export const GATEWAY_ID_HEADER = "flip-gateway-id";

/** Host and pid, for the operator who must find the process; the random tail tells apart pids reused after a restart. */
export function newGatewayId(): string {
  return `${os.hostname()}/pid ${process.pid}/${randomUUID().slice(0, 8)}`;
}

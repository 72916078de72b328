/**
 * The request header in which a gateway names its process (set in
 * services/trust-gateway/src/link/gateway-identity.ts): "host/pid N/nonce". A stream without it (an
 * older gateway, a test's hand-driven stream) follows the old rule: the newest stream of a trust wins.
 */
export const GATEWAY_ID_HEADER = "flip-gateway-id";

const MAX_LENGTH = 200;

/** The gateway's self-description, if it sent a sane one (it is shown to operators and logged). */
export function gatewayIdOf(header: Headers): string | undefined {
  const id = header.get(GATEWAY_ID_HEADER)?.trim();
  if (!id || id.length > MAX_LENGTH || !/^[\x20-\x7e]+$/.test(id)) return undefined;
  return id;
}

import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Failures that end the gateway instead of a reconnect: retrying cannot help until an operator
 * changes the configuration (the key, the trust code) or the hub admin re-enables the trust.
 */
export class LinkRefusedError extends Error {
  override readonly name: string = "LinkRefusedError";
  constructor(
    message: string,
    readonly code: Code,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The hub says the key belongs to another trust than the one this gateway is configured for. */
export class TrustMismatchError extends LinkRefusedError {
  override readonly name = "TrustMismatchError";
  constructor(
    readonly configured: string,
    readonly named: string,
  ) {
    super(`the hub says this key belongs to trust "${named}", but this gateway is configured for "${configured}"; refusing to run`, Code.PermissionDenied);
  }
}

/** Whether a stream failure should stop the gateway rather than trigger a reconnect. */
export function refusalOf(e: unknown): LinkRefusedError | undefined {
  if (e instanceof LinkRefusedError) return e;
  const err = ConnectError.from(e);
  if (err.code === Code.Unauthenticated || err.code === Code.PermissionDenied) {
    return new LinkRefusedError(`the hub refused the link: ${err.rawMessage}`, err.code, { cause: e });
  }
  return undefined;
}

/** The link went quiet: no message from the hub for several heartbeat intervals. */
export class HubSilentError extends Error {
  override readonly name = "HubSilentError";
}

import { ConnectError } from "@connectrpc/connect";

/** The ConnectError a call rejected with; throws when it resolved instead. */
export async function connectErrorOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("expected the call to fail");
}

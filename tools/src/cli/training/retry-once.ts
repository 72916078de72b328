import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Runs a create call with a fresh idempotency key and, when the hub could not be reached or dropped the
 * call (Unavailable), once more with the same key: the hub answers a retry with what the first call
 * made, so a lost answer never becomes a second model or job.
 */
export async function createOnce<T>(call: (idempotencyKey: string) => Promise<T>, onRetry: (e: ConnectError) => void, key: string = crypto.randomUUID()): Promise<T> {
  try {
    return await call(key);
  } catch (e) {
    const err = ConnectError.from(e);
    if (err.code !== Code.Unavailable) throw e;
    onRetry(err);
    await new Promise((r) => setTimeout(r, 500));
    return await call(key);
  }
}

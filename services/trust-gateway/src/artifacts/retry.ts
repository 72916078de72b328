import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "@flip/shared/logging/logger.js";
import { ArtifactAuthError, ArtifactChecksumError, ArtifactRejectedError, ArtifactTransferError } from "./errors.js";

/** How a transfer behaves; every field has a default. */
export interface TransferOptions {
  retry?: RetryPolicy;
  /** Aborts the transfer; a partial upload or download stays resumable. */
  signal?: AbortSignal;
  log?: Logger;
}

export interface RetryPolicy {
  /** Consecutive failed attempts (without progress) before giving up. */
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 8, initialDelayMs: 200, maxDelayMs: 10_000 };

/**
 * Codes a broken connection or a restarting hub produces: resume and try again. Aborted is among them
 * because connect-node reports a reset connection (ECONNRESET, an HTTP/2 stream reset) as Aborted, and the
 * hub uses it when a newer stream of the same upload took over; either way, resuming is right.
 */
const TRANSIENT = new Set([Code.Unavailable, Code.Internal, Code.Unknown, Code.DeadlineExceeded, Code.Canceled, Code.Aborted]);

/** Whether to retry after `e` (a transient transport failure), or the typed error to throw. */
export function classify(artifactId: string, e: unknown): { retry: true; error: ConnectError } | { retry: false; error: ArtifactTransferError } {
  if (e instanceof ArtifactTransferError) return { retry: false, error: e };
  const err = ConnectError.from(e);
  if (TRANSIENT.has(err.code)) return { retry: true, error: err };
  const message = `artifact ${artifactId}: ${err.rawMessage}`;
  if (err.code === Code.Unauthenticated || err.code === Code.PermissionDenied) {
    return { retry: false, error: new ArtifactAuthError(artifactId, message, err.code, { cause: err }) };
  }
  if (err.code === Code.DataLoss) return { retry: false, error: new ArtifactChecksumError(artifactId, message, err.code, { cause: err }) };
  return { retry: false, error: new ArtifactRejectedError(artifactId, message, err.code, { cause: err }) };
}

/** Exponential backoff with full jitter, so many gateways reconnecting at once spread out. */
export function backoffMs(policy: RetryPolicy, failures: number): number {
  const cap = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, failures - 1));
  return cap / 2 + Math.random() * (cap / 2);
}

export async function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

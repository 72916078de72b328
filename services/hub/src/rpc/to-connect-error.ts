import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "@flip/shared/logging/logger.js";
import { DeadlockException, LockWaitTimeoutException, OptimisticLockError, UniqueConstraintViolationException } from "@mikro-orm/core";
import {
  AbortedError,
  AlreadyExistsError,
  ConcurrentChangeError,
  DataLossError,
  DependencyUnavailableError,
  DomainError,
  FailedPreconditionError,
  InvalidInputError,
  LimitReachedError,
  NotFoundError,
  OutOfRangeError,
  PermissionError,
  UnauthenticatedError,
} from "../domain/errors.js";

/** Each domain failure mode's wire code; a subclass takes its parent's. */
const CODES: [new (...args: never[]) => DomainError, Code][] = [
  [InvalidInputError, Code.InvalidArgument],
  [NotFoundError, Code.NotFound],
  [AlreadyExistsError, Code.AlreadyExists],
  [FailedPreconditionError, Code.FailedPrecondition],
  [AbortedError, Code.Aborted],
  [PermissionError, Code.PermissionDenied],
  [UnauthenticatedError, Code.Unauthenticated],
  [LimitReachedError, Code.ResourceExhausted],
  [DependencyUnavailableError, Code.Unavailable],
  [DataLossError, Code.DataLoss],
  [OutOfRangeError, Code.OutOfRange],
];

/**
 * The hub's one mapping from errors to Connect codes, used at every handler boundary. Anything
 * unexpected becomes Internal with a fixed message: a plain Error's text never reaches a client.
 */
export function toConnectError(e: unknown): ConnectError {
  if (e instanceof ConnectError) return e;
  if (e instanceof DomainError) {
    const code = CODES.find(([type]) => e instanceof type)?.[1];
    if (code !== undefined) return new ConnectError(e.wireMessage(), code, e.headers, undefined, e);
  }
  if (e instanceof OptimisticLockError) {
    return new ConnectError(new ConcurrentChangeError().message, Code.Aborted, undefined, undefined, e);
  }
  // Two transactions that wanted each other's rows: PostgreSQL rolled this one back, so a retry is safe.
  if (e instanceof DeadlockException || e instanceof LockWaitTimeoutException) {
    return new ConnectError("the hub was busy with a conflicting change; try again", Code.Aborted, undefined, undefined, e);
  }
  if (e instanceof UniqueConstraintViolationException) return new ConnectError("a record with that identity already exists", Code.AlreadyExists, undefined, undefined, e);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, e);
}

/** The wire error of a failed RPC; only unexpected failures (Internal) are logged, the rest are the caller's business. */
export function rpcErrorOf(log: Logger, rpc: string, e: unknown): ConnectError {
  const err = toConnectError(e);
  if (err.code === Code.Internal) log.error({ err: e, rpc }, "unexpected error in handler");
  return err;
}

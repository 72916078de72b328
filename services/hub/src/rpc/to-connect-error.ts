import { Code, ConnectError } from "@connectrpc/connect";
import { OptimisticLockError, UniqueConstraintViolationException } from "@mikro-orm/core";
import {
  AlreadyExistsError,
  ConcurrentChangeError,
  FailedPreconditionError,
  InvalidInputError,
  NotFoundError,
  PermissionError,
  TooLargeError,
} from "./domain-errors.js";

/**
 * Maps domain errors to Connect codes at the handler boundary. Anything unexpected becomes Internal
 * with a fixed message: a plain Error's text never reaches a client.
 */
export function toConnectError(e: unknown): ConnectError {
  if (e instanceof ConnectError) return e;
  if (e instanceof InvalidInputError) return new ConnectError(e.message, Code.InvalidArgument, undefined, undefined, e);
  if (e instanceof NotFoundError) return new ConnectError(e.message, Code.NotFound, undefined, undefined, e);
  if (e instanceof AlreadyExistsError) return new ConnectError(e.message, Code.AlreadyExists, undefined, undefined, e);
  if (e instanceof FailedPreconditionError) return new ConnectError(e.message, Code.FailedPrecondition, undefined, undefined, e);
  if (e instanceof ConcurrentChangeError || e instanceof OptimisticLockError) {
    return new ConnectError("the record changed while you were editing it; read it again and retry", Code.Aborted, undefined, undefined, e);
  }
  if (e instanceof TooLargeError) return new ConnectError(e.message, Code.ResourceExhausted, undefined, undefined, e);
  if (e instanceof PermissionError) return new ConnectError(e.message, Code.PermissionDenied, undefined, undefined, e);
  if (e instanceof UniqueConstraintViolationException) return new ConnectError("a record with that identity already exists", Code.AlreadyExists, undefined, undefined, e);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, e);
}

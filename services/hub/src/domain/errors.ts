/**
 * Failure modes of hub domain functions. They know nothing of Connect; `rpc/to-connect-error.ts` maps
 * each to its wire code. Messages are written for the person who made the call.
 */
export class InvalidInputError extends Error {
  override readonly name = "InvalidInputError";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

export class NotFoundError extends Error {
  override readonly name = "NotFoundError";
  constructor(
    readonly what: string,
    readonly key: string,
  ) {
    super(`${what} "${key}" not found`);
  }
}

export class AlreadyExistsError extends Error {
  override readonly name = "AlreadyExistsError";
}

/** The target is not in a state that allows the operation; the message says which state is needed. */
export class FailedPreconditionError extends Error {
  override readonly name = "FailedPreconditionError";
}

/** A concurrent change won; retrying may succeed. */
export class ConcurrentChangeError extends Error {
  override readonly name = "ConcurrentChangeError";
}

export class PermissionError extends Error {
  override readonly name = "PermissionError";
}

/** The input is larger than the hub accepts; the message names the limit. */
export class TooLargeError extends Error {
  override readonly name = "TooLargeError";
}

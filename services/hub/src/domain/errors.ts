/**
 * Failure modes of hub domain functions. They know nothing of Connect; `rpc/to-connect-error.ts` maps
 * each class to its wire code, the one mapping for every domain. A domain with failure modes of its own
 * (artifacts, identity) subclasses these. Messages are written for the person who made the call.
 */
export abstract class DomainError extends Error {
  /** Response headers that let a client act without parsing the message (e.g. `retry-after`). */
  readonly headers: Readonly<Record<string, string>> | undefined = undefined;

  /** What the caller is told; the message itself unless a subclass frames it. */
  wireMessage(): string {
    return this.message;
  }
}

export class InvalidInputError extends DomainError {
  override readonly name: string = "InvalidInputError";
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

export class NotFoundError extends DomainError {
  override readonly name = "NotFoundError";
  constructor(
    readonly what: string,
    readonly key: string,
  ) {
    super(`${what} "${key}" not found`);
  }
}

export class AlreadyExistsError extends DomainError {
  override readonly name = "AlreadyExistsError";
}

/** The target is not in a state that allows the operation; the message says which state is needed. */
export class FailedPreconditionError extends DomainError {
  override readonly name = "FailedPreconditionError";
}

/** Another operation got there first; reading again and retrying may succeed. */
export class AbortedError extends DomainError {
  override readonly name: string = "AbortedError";
}

/** A concurrent edit of the same record won. */
export class ConcurrentChangeError extends AbortedError {
  override readonly name = "ConcurrentChangeError";
  constructor(message = "the record changed while you were editing it; read it again and retry") {
    super(message);
  }
}

export class PermissionError extends DomainError {
  override readonly name = "PermissionError";
}

/** The caller could not be identified (no, a wrong or an expired credential). */
export class UnauthenticatedError extends DomainError {
  override readonly name: string = "UnauthenticatedError";
}

/** A limit was reached: a size, a count or a rate. The message names the limit and what to do. */
export class LimitReachedError extends DomainError {
  override readonly name: string = "LimitReachedError";
  override readonly headers: Readonly<Record<string, string>> | undefined;
  constructor(
    message: string,
    /** When trying again can succeed; sent as `retry-after`. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.headers = retryAfterSeconds === undefined ? undefined : { "retry-after": String(Math.max(1, Math.ceil(retryAfterSeconds))) };
  }
}

/** The input is larger than the hub accepts; the message names the limit. */
export class TooLargeError extends LimitReachedError {
  override readonly name: string = "TooLargeError";
}

/** Something the hub depends on (e.g. the identity provider) cannot be reached; trying later may succeed. */
export class DependencyUnavailableError extends DomainError {
  override readonly name: string = "DependencyUnavailableError";
}

/** Stored or received bytes are not what was declared; they were discarded. */
export class DataLossError extends DomainError {
  override readonly name: string = "DataLossError";
}

/** A position past the end of what exists. */
export class OutOfRangeError extends DomainError {
  override readonly name: string = "OutOfRangeError";
}

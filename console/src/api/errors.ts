import { Code, ConnectError } from "@connectrpc/connect";

/**
 * A sentence a person can act on for a failed call. The hub's messages are written for people, so they
 * are shown as they are; the code adds what to do where the message alone would not say it.
 */
export function errorText(e: unknown): string {
  if (e instanceof DOMException && e.name === "AbortError") return "Cancelled.";
  if (!(e instanceof ConnectError)) return e instanceof Error ? e.message : String(e);
  const message = e.rawMessage;
  switch (e.code) {
    case Code.Unauthenticated:
      return message || "Your session has ended; sign in again.";
    case Code.PermissionDenied:
      return message ? `Not allowed: ${message}` : "Your roles do not allow this.";
    case Code.Unavailable:
      return message ? `The hub cannot be reached right now (${message}); it retries by itself.` : "The hub cannot be reached right now; it retries by itself.";
    case Code.DeadlineExceeded:
      return "The hub took too long to answer; try again.";
    case Code.ResourceExhausted: {
      const retry = e.metadata.get("retry-after");
      return retry ? `${message} (try again in ${retry} s)` : message;
    }
    default:
      return message || Code[e.code];
  }
}

/** The field an INVALID_ARGUMENT names first ("sql: does not parse …" → "sql"), for showing the message beside it. */
export function invalidField(e: unknown): string | undefined {
  if (!(e instanceof ConnectError) || e.code !== Code.InvalidArgument) return undefined;
  return /^([a-z_][a-z0-9_.]*)\b/.exec(e.rawMessage)?.[1];
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string is a UUID (the hub's ids), so lookups can tell an id from a code or an email. */
export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

/** The longest idempotency key a create call may carry. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;

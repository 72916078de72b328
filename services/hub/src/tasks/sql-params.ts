import type { JsonValue } from "@bufbuild/protobuf";

/** Task ids are UUIDs; anything else is rejected before it reaches SQL. */
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A jsonb parameter for raw SQL (`?::jsonb`): SQL NULL for null, text otherwise (pg would turn arrays into SQL arrays). */
export function jsonParam(v: JsonValue | null): string | null {
  return v === null ? null : JSON.stringify(v);
}

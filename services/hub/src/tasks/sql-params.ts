import type { JsonValue } from "@bufbuild/protobuf";

/** A jsonb parameter for raw SQL (`?::jsonb`): SQL NULL for null, text otherwise (pg would turn arrays into SQL arrays). */
export function jsonParam(v: JsonValue | null): string | null {
  return v === null ? null : JSON.stringify(v);
}

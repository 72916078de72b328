import type { DescEnum } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { PersonRef } from "@flip/gen/flip/hub/v1/people_pb.js";

/** A plain text table: columns padded to their widest cell. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

export function when(ts: Timestamp | undefined): string {
  return ts ? timestampDate(ts).toISOString().replace(/\.\d{3}Z$/, "Z") : "-";
}

/** The suffix of a proto enum name, e.g. LINK_STATUS_ONLINE → online. */
export function enumLabel(name: string | undefined, prefix: string): string {
  return (name ?? "unknown").replace(prefix, "").toLowerCase().replaceAll("_", "-");
}

/** The label of an enum value by its number, e.g. (LinkStatusSchema, 1, "LINK_STATUS_") → online. */
export function valueLabel(schema: DescEnum, value: number | undefined, prefix: string): string {
  return enumLabel(value === undefined ? undefined : schema.value[value]?.name, prefix);
}

/**
 * A person as people recognise them: their email, else their name. Without either (not a user, or a user
 * that is gone) it is `fallback`, the raw id or actor, with the bootstrap admin spelt out.
 */
export function personLabel(ref: PersonRef | undefined, fallback: string): string {
  if (ref?.email) return ref.email;
  if (ref?.name) return ref.name;
  return fallback === "bootstrap-admin" ? "bootstrap admin" : fallback;
}

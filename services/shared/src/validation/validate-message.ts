import { ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { ruleFor, type StringRule } from "./request-rules.js";

/** The first thing wrong with a request: the field's path (`roles[0].trust_id`) and what is wrong. */
export interface Violation {
  path: string;
  problem: string;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// C0 controls other than tab (\x09), newline (\x0a) and carriage return (\x0d).
const CONTROL_RE = /[\x00-\x08\x0b\x0c\x0e-\x1f]/;

/**
 * Walks every string in a request (nested messages, repeated fields, map keys and values) and
 * returns the first that breaks its rule in `request-rules.ts`, or undefined. Bytes are not checked.
 */
export function findViolation(desc: DescMessage, message: Message): Violation | undefined {
  return walk(reflect(desc, message), "", desc.file.proto.package);
}

/** `api`: the package of the request, which picks the rules (see `ruleFor`). */
function walk(r: ReflectMessage, prefix: string, api: string): Violation | undefined {
  const timeProblem = checkTime(r);
  if (timeProblem) return { path: prefix.slice(0, -1) || r.desc.typeName, problem: timeProblem };
  for (const field of r.fields) {
    const path = prefix + field.name;
    if (!r.isSet(field)) {
      if (isRequiredString(field, api)) return { path, problem: "is required" };
      continue;
    }
    const found = walkField(r, field, path, api);
    if (found) return found;
  }
  return undefined;
}

function walkField(r: ReflectMessage, field: DescField, path: string, api: string): Violation | undefined {
  switch (field.fieldKind) {
    case "scalar":
      return field.scalar === ScalarType.STRING ? check(r.get(field) as string, ruleFor(field, api), path) : undefined;
    case "message":
      return walk(r.get(field), `${path}.`, api);
    case "list": {
      const list = r.get(field);
      let i = 0;
      for (const item of list) {
        const itemPath = `${path}[${i++}]`;
        const found =
          field.listKind === "message"
            ? walk(item as ReflectMessage, `${itemPath}.`, api)
            : field.listKind === "scalar" && field.scalar === ScalarType.STRING
              ? check(item as string, ruleFor(field, api), itemPath)
              : undefined;
        if (found) return found;
      }
      return undefined;
    }
    case "map": {
      const rule = ruleFor(field, api);
      for (const [key, value] of r.get(field)) {
        if (field.mapKey === ScalarType.STRING) {
          const found = check(String(key), rule, `${path} key`);
          if (found) return found;
        }
        const valuePath = `${path}[${JSON.stringify(String(key)).slice(0, 40)}]`;
        const found =
          field.mapKind === "message"
            ? walk(value as ReflectMessage, `${valuePath}.`, api)
            : field.mapKind === "scalar" && field.scalar === ScalarType.STRING
              ? check(value as string, rule, valuePath)
              : undefined;
        if (found) return found;
      }
      return undefined;
    }
    case "enum":
      return undefined;
  }
}

function isRequiredString(field: DescField, api: string): boolean {
  return field.fieldKind === "scalar" && field.scalar === ScalarType.STRING && ruleFor(field, api).required === true;
}

/** The value is never echoed back: it may be a password or a token. */
function check(value: string, rule: StringRule, path: string): Violation | undefined {
  if (value.length > rule.maxChars) return { path, problem: `longer than ${rule.maxChars} characters` };
  const control = rule.controls === "reject" ? CONTROL_RE.exec(value) : value.includes("\0") ? ["\0"] : null;
  if (control) {
    const code = `U+${control[0]!.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
    return { path, problem: `contains the control character ${code}; only tab, newline and carriage return are allowed` };
  }
  if (rule.required && value === "") return { path, problem: "is required" };
  if (rule.format === "uuid" && value !== "" && !UUID_RE.test(value)) {
    return { path, problem: "must be a UUID (e.g. 0b0e6c1e-9d4f-4f6e-8a43-5d2c7b7e2f10)" };
  }
  return undefined;
}

// The range protobuf's JSON form allows: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, and ±10,000 years.
const MIN_TIMESTAMP_SECONDS = -62_135_596_800n;
const MAX_TIMESTAMP_SECONDS = 253_402_300_799n;
const MAX_DURATION_SECONDS = 315_576_000_000n;

/**
 * A Timestamp or Duration the binary form carries but no JSON or SQL timestamp can hold; the hub
 * stores such values (a gateway's health snapshot, a task's timeout), so they are refused here.
 */
function checkTime(r: ReflectMessage): string | undefined {
  const name = r.desc.typeName;
  if (name !== "google.protobuf.Timestamp" && name !== "google.protobuf.Duration") return undefined;
  const seconds = BigInt(r.get(r.desc.field.seconds!) as bigint | string);
  const nanos = r.get(r.desc.field.nanos!) as number;
  if (name === "google.protobuf.Timestamp") {
    if (seconds < MIN_TIMESTAMP_SECONDS || seconds > MAX_TIMESTAMP_SECONDS) return "must be a time between the years 1 and 9999";
    if (nanos < 0 || nanos > 999_999_999) return "nanos must be 0 to 999999999";
    return undefined;
  }
  if (seconds < -MAX_DURATION_SECONDS || seconds > MAX_DURATION_SECONDS) return "must be at most 10,000 years";
  if (nanos < -999_999_999 || nanos > 999_999_999) return "nanos must be -999999999 to 999999999";
  if ((seconds > 0n && nanos < 0) || (seconds < 0n && nanos > 0)) return "seconds and nanos must have the same sign";
  return undefined;
}

import type { DescField } from "@bufbuild/protobuf";

/** What a string field of a request may hold. */
export interface StringRule {
  /** Most UTF-16 code units accepted. */
  maxChars: number;
  /**
   * `reject`: no C0 control characters except tab, newline and carriage return;
   * `nul-only`: only NUL is refused (PostgreSQL cannot store it), for text that carries terminal
   * output (log lines with ANSI colours, progress bars).
   */
  controls: "reject" | "nul-only";
  /** `uuid`: a non-empty value must be a UUID (empty means "not given"; the handler decides if it is required). */
  format?: "uuid";
  /** Empty is refused too; for fields whose handlers would otherwise take "" as a value. */
  required?: true;
}

/** The default for a person's input: short, printable text. */
export const DEFAULT_MAX_CHARS = 1024;
const person: StringRule = { maxChars: DEFAULT_MAX_CHARS, controls: "reject" };

/**
 * Rules for whole APIs, by the package of the RPC's request. The link and the training runtime carry
 * machine-written text (task errors, events, health details, log lines) whose handlers check meaning
 * themselves; they keep terminal escapes, so a noisy workload cannot cut a trust's link, but NUL is
 * still refused. The link has no length limit of its own: the hub cuts what it stores, the read cap
 * bounds a message, and a refused message would only come back after the gateway reconnects.
 */
const machineApis: Readonly<Record<string, StringRule>> = {
  "flip.link.v1": { maxChars: Number.POSITIVE_INFINITY, controls: "nul-only" },
  "flip.runtime.v1": { maxChars: 64 * 1024, controls: "nul-only" },
};

/**
 * Fields of people's APIs that may be longer, or must have a format, keyed by field name (any
 * message) or by full name (`package.Message.field`, which wins, in any API). Each limit is at or
 * above what the handler enforces, so the handler's own, more specific message still reaches the
 * caller when it has one.
 */
const fieldRules: Readonly<Record<string, StringRule>> = {
  // RFC 5321: a forward-path holds at most 254 characters.
  email: { maxChars: 254, controls: "reject" },
  // Researchers' SQL; data access enforces its own, tighter limit with a QueryRejection.
  sql: { maxChars: 100_000, controls: "reject" },
  description: { maxChars: 4_000, controls: "reject" },
  reason: { maxChars: 2_000, controls: "reject" },
  // Model configuration; the hub limits it to 64 KiB of UTF-8.
  config_json: { maxChars: 64 * 1024, controls: "reject" },
  // Echo task text and progress or event messages.
  message: { maxChars: 10_000, controls: "reject" },
  // Opaque tokens: access tokens are JWTs of up to 16 KiB.
  refresh_token: { maxChars: 16 * 1024, controls: "reject" },
  // A gateway reports progress on a task the hub gave it; training and imaging reports are stored by this id.
  "flip.link.v1.TaskProgress.task_id": { maxChars: 36, controls: "reject", format: "uuid", required: true },
  // These take a trust's id or its code.
  "flip.hub.v1.RoleGrant.trust_id": person,
  "flip.hub.v1.ListMetricsRequest.trust_id": person,
};

/** Packages whose `id`, `*_id` and `*_ids` fields hold UUIDs (the hub's primary keys). */
const uuidIdPackages = new Set(["flip.hub.v1"]);

const uuidId: StringRule = { maxChars: 36, controls: "reject", format: "uuid" };

/**
 * The rule for one string field (or the elements of a repeated one, or a map's keys and values) of a
 * request to an RPC in package `api`.
 */
export function ruleFor(field: DescField, api: string): StringRule {
  const message = field.parent;
  const byFullName = fieldRules[`${message.typeName}.${field.name}`];
  if (byFullName) return byFullName;
  const machine = machineApis[api];
  if (machine) return machine;
  const byName = fieldRules[field.name];
  if (byName) return byName;
  if (uuidIdPackages.has(message.file.proto.package) && isIdFieldName(field.name)) return uuidId;
  return person;
}

function isIdFieldName(name: string): boolean {
  return name === "id" || name.endsWith("_id") || name.endsWith("_ids");
}

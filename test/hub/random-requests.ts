import { ScalarType, toBinary, toJson, type DescField, type DescMessage, type JsonValue, type Message } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";

/** A small seeded PRNG (mulberry32), so a failing fuzz case can be replayed from its seed. */
export class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.int(256));
  }
}

const STRINGS = [
  "",
  "north",
  "0b0e6c1e-9d4f-4f6e-8a43-5d2c7b7e2f10",
  "not-a-uuid",
  "ada@hospital.nhs.uk",
  "select count(*) from omop.person",
  "x\0y",
  "\x1b[2J",
  "é漢字🙂",
  "\ud800",
  "a".repeat(3000),
  "' or 1=1 --",
  "../../etc/passwd",
];

function randomString(rng: Prng): string {
  if (rng.chance(0.7)) return rng.pick(STRINGS);
  return String.fromCharCode(...Array.from({ length: rng.int(40) }, () => rng.int(0x800)));
}

function randomScalar(rng: Prng, type: ScalarType): unknown {
  switch (type) {
    case ScalarType.STRING:
      return randomString(rng);
    case ScalarType.BYTES:
      return rng.bytes(rng.int(64));
    case ScalarType.BOOL:
      return rng.chance(0.5);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return rng.pick([0, -1, 1.5, 1e300, Number.NaN, Number.POSITIVE_INFINITY]);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return rng.pick([0n, -1n, 1n, 9223372036854775807n, -9223372036854775808n]);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return rng.pick([0n, 1n, 18446744073709551615n, 4096n]);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return rng.pick([0, 1, 3, 4294967295, 100000]);
    default:
      return rng.pick([0, 1, -1, 2147483647, -2147483648]);
  }
}

/**
 * How hostile a random message is: `hostile` strings include NUL, escapes, 3,000 characters and lone
 * surrogates, and times out of range; `plausible` ones look like what a working client sends, so a
 * fuzzed stream gets past its first message.
 */
export type Temper = "hostile" | "plausible";

const PLAUSIBLE_STRINGS = ["", "north", "0b0e6c1e-9d4f-4f6e-8a43-5d2c7b7e2f10", "loss", "ok", "model-update"];

/** Ids are UUIDs (unknown ones, so they find nothing), other text is short and printable. */
function plausibleString(rng: Prng, field: DescField): string {
  if (!/(^|_)ids?$/.test(field.name)) return rng.pick(PLAUSIBLE_STRINGS);
  const hex = Array.from(rng.bytes(16), (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** A random but well-formed message: every field has a fair chance of a value, odd ones included. */
export function randomMessage(rng: Prng, desc: DescMessage, temper: Temper = "hostile", depth = 0): ReflectMessage {
  // Unchecked, so that invalid UTF-16 (a lone surrogate) reaches the encoder like a careless client sends it.
  const r = reflect(desc, undefined, false);
  if (depth > 4 || (temper === "plausible" && desc.typeName.startsWith("google.protobuf."))) return r;
  for (const field of desc.fields) {
    if (!rng.chance(0.6)) continue;
    setRandom(rng, r, field, temper, depth);
  }
  return r;
}

function setRandom(rng: Prng, r: ReflectMessage, field: DescField, temper: Temper, depth: number): void {
  switch (field.fieldKind) {
    case "scalar":
      r.set(field, temper === "plausible" && field.scalar === ScalarType.STRING ? plausibleString(rng, field) : randomScalar(rng, field.scalar));
      return;
    case "enum":
      r.set(field, rng.chance(0.8) ? rng.pick(field.enum.values).number : rng.pick([-1, 99, 2147483647]));
      return;
    case "message":
      r.set(field, randomMessage(rng, field.message, temper, depth + 1));
      return;
    case "list": {
      const list = r.get(field);
      for (let i = rng.int(4); i > 0; i--) {
        if (field.listKind === "message") list.add(randomMessage(rng, field.message, temper, depth + 1));
        else if (field.listKind === "enum") list.add(rng.pick(field.enum.values).number);
        else list.add(temper === "plausible" && field.scalar === ScalarType.STRING ? plausibleString(rng, field) : randomScalar(rng, field.scalar));
      }
      return;
    }
    case "map": {
      const map = r.get(field);
      for (let i = rng.int(3); i > 0; i--) {
        const key = field.mapKey === ScalarType.STRING ? randomString(rng) : field.mapKey === ScalarType.BOOL ? rng.chance(0.5) : rng.int(1000);
        const value = field.mapKind === "message" ? randomMessage(rng, field.message, temper, depth + 1) : field.mapKind === "enum" ? rng.pick(field.enum.values).number : randomScalar(rng, field.scalar);
        map.set(key, value);
      }
      return;
    }
  }
}

/** The binary encoding of a random message, often damaged: bits flipped, cut short, extended, or pure noise. */
export function randomBinaryBody(rng: Prng, desc: DescMessage): Uint8Array {
  const valid = toBinary(desc, randomMessage(rng, desc).message);
  switch (rng.int(5)) {
    case 0:
      return valid;
    case 1: {
      const flipped = Uint8Array.from(valid);
      for (let i = 1 + rng.int(4); i > 0 && flipped.length > 0; i--) flipped[rng.int(flipped.length)]! ^= 1 << rng.int(8);
      return flipped;
    }
    case 2:
      return valid.subarray(0, rng.int(valid.length + 1));
    case 3: {
      const out = new Uint8Array(valid.length + 1 + rng.int(32));
      out.set(valid);
      out.set(rng.bytes(out.length - valid.length), valid.length);
      return out;
    }
    default:
      return rng.bytes(rng.int(200));
  }
}

const WRONG_JSON: readonly JsonValue[] = [
  null,
  true,
  -1,
  1e308,
  "1e400",
  "18446744073709551616",
  "x".repeat(200_000),
  [],
  [1, "two", null],
  {},
  { nested: { deeper: [{}] } },
  "\u0000",
];

/** Connect JSON for a random message with some values swapped for wrong types, huge values or unknown fields; sometimes not JSON at all. */
export function randomJsonBody(rng: Prng, desc: DescMessage): string {
  if (rng.chance(0.1)) return rng.pick(["", "{", "[]", "null", '{"a":', "\u0000", "{}".repeat(1000)]);
  const json = jsonOf(desc, randomMessage(rng, desc).message, rng.chance(0.5));
  if (json === null || typeof json !== "object" || Array.isArray(json)) return JSON.stringify(json);
  const obj = json as Record<string, JsonValue>;
  const keys = [...desc.fields.map((f) => f.jsonName), "unknownField"];
  for (let i = 1 + rng.int(3); i > 0; i--) obj[rng.pick(keys)] = rng.pick(WRONG_JSON);
  return JSON.stringify(obj);
}

/** The JSON form of a message, or `{}` when it has none (a random Duration or Timestamp can be out of JSON's range). */
function jsonOf(desc: DescMessage, message: Message, alwaysEmitImplicit: boolean): JsonValue {
  try {
    return toJson(desc, message, { alwaysEmitImplicit });
  } catch {
    return {};
  }
}

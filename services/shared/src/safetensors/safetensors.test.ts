import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { encodeSafetensorsHeader, parseSafetensorsHeader, readSafetensorsHeader, SafetensorsError, serializeSafetensors } from "./safetensors.js";

/** A file with the given header JSON (as text, unpadded) and `dataBytes` zero bytes after it. */
function rawFile(header: string, dataBytes: number): Buffer {
  const json = Buffer.from(header);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, Buffer.alloc(dataBytes)]);
}

const tensor = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });
const file = (entries: Record<string, unknown>, dataBytes: number) => rawFile(JSON.stringify(entries), dataBytes);

test("a written file parses back with its tensors in data order, its metadata, and data starting at a multiple of 8", (t) => {
  const bytes = serializeSafetensors(
    [
      { name: "conv.weight", dtype: "F32", shape: [2, 3], data: new Float32Array(6) },
      { name: "bn.num_batches_tracked", dtype: "I64", shape: [], data: new BigInt64Array([7n]) },
      { name: "mask", dtype: "BOOL", shape: [3], data: new Uint8Array([1, 0, 1]) },
      { name: "empty", dtype: "F16", shape: [0, 4], data: new Uint16Array(0) },
    ],
    { format: "pt" },
  );
  const header = parseSafetensorsHeader(bytes);
  t.is(header.dataStart % 8, 0);
  t.is(header.dataStart, 8 + header.headerBytes);
  t.is(header.dataBytes, 24 + 8 + 3);
  t.deepEqual(header.metadata, { format: "pt" });
  t.deepEqual(
    header.tensors.map((x) => [x.name, x.dtype, x.shape, x.begin, x.end]),
    [
      ["conv.weight", "F32", [2, 3], 0, 24],
      ["bn.num_batches_tracked", "I64", [], 24, 32],
      ["mask", "BOOL", [3], 32, 35],
      ["empty", "F16", [0, 4], 35, 35],
    ],
  );
  t.is(bytes.readBigUInt64LE(0) % 8n, 0n);
  t.is(bytes.subarray(8, header.dataStart).toString().trimEnd().endsWith("}"), true);
});

test("the header's tensor order in the JSON does not matter; the data order does", (t) => {
  const header = parseSafetensorsHeader(file({ b: tensor("F32", [1], 4, 8), __metadata__: { k: "v" }, a: tensor("F32", [1], 0, 4) }, 8));
  t.deepEqual(
    header.tensors.map((x) => x.name),
    ["a", "b"],
  );
});

test("reading a header from a file gives what parsing the same bytes gives", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "flip-safetensors-"));
  try {
    const bytes = serializeSafetensors([{ name: "w", dtype: "BF16", shape: [5], data: new Uint16Array(5) }]);
    await writeFile(path.join(dir, "w.safetensors"), bytes);
    t.deepEqual(await readSafetensorsHeader(path.join(dir, "w.safetensors")), parseSafetensorsHeader(bytes));
    await writeFile(path.join(dir, "short.safetensors"), bytes.subarray(0, bytes.length - 1));
    await t.throwsAsync(readSafetensorsHeader(path.join(dir, "short.safetensors")), { instanceOf: SafetensorsError, message: /tensor "w": data_offsets \[0, 10\] run past the end of the 9-byte data section/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const malformed: [string, Buffer, RegExp][] = [
  ["shorter than the length field", Buffer.alloc(5), /5 bytes, shorter than the 8-byte header length/],
  ["a header length past the end of the file", (() => {
    const b = rawFile("{}", 0);
    b.writeBigUInt64LE(1000n);
    return b;
  })(), /header length 1000 runs past the end of the 10-byte file/],
  ["a header that is not JSON", rawFile("{nope", 0), /not UTF-8 JSON/],
  ["a header that is not UTF-8", rawFile("{\"\xff\"}", 0).fill(0xff, 10, 11), /not UTF-8 JSON/],
  ["a header that is a JSON array", rawFile("[1, 2]", 0), /not a JSON object/],
  ["an unknown dtype", file({ w: tensor("F8", [1], 0, 1) }, 1), /tensor "w": dtype "F8" is not one of F64, F32, F16, BF16, F8_E5M2, F8_E4M3, I64, I32, I16, I8, U64, U32, U16, U8, BOOL/],
  ["a shape that is not a list of counts", file({ w: tensor("F32", [2, -1], 0, 8) }, 8), /tensor "w": shape \[2,-1\] is not a list of non-negative integers/],
  ["data_offsets that are not a pair", file({ w: { dtype: "F32", shape: [1], data_offsets: [0] } }, 4), /tensor "w": data_offsets \[0\] is not \[begin, end\]/],
  ["data_offsets past the end of the data", file({ w: tensor("F32", [4], 0, 16) }, 12), /tensor "w": data_offsets \[0, 16\] run past the end of the 12-byte data section/],
  ["overlapping tensors", file({ a: tensor("F32", [2], 0, 8), b: tensor("F32", [2], 4, 12) }, 12), /tensor "b": data_offsets \[4, 12\] overlap the tensor before it, which ends at 8/],
  ["a gap between tensors", file({ a: tensor("F32", [1], 0, 4), b: tensor("F32", [1], 8, 12) }, 12), /tensor "b": data_offsets \[8, 12\] leave a gap of 4 bytes after offset 4/],
  ["a byte count that does not fit dtype and shape", file({ w: tensor("F32", [3], 0, 8) }, 8), /tensor "w": data_offsets \[0, 8\] hold 8 bytes but F32 \[3\] needs 12/],
  ["offsets that end before they begin", file({ w: tensor("U8", [0], 4, 0) }, 4), /end before they begin/],
  ["data the tensors do not cover", file({ w: tensor("F32", [1], 0, 4) }, 8), /the tensors cover 4 bytes but the data section holds 8/],
  ["metadata that is not strings", file({ __metadata__: { epochs: 3 }, w: tensor("U8", [1], 0, 1) }, 1), /"__metadata__"."epochs" is not a string/],
  ["a tensor entry that is not an object", file({ w: 3 }, 0), /tensor "w": is not an object/],
];
for (const [what, bytes, message] of malformed) {
  test(`a file with ${what} is refused with a message that says so`, (t) => {
    t.throws(() => parseSafetensorsHeader(bytes), { instanceOf: SafetensorsError, message });
  });
}

test("a header over 100 MB is refused before it is read", (t) => {
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(150_000_000n);
  t.throws(() => parseSafetensorsHeader(prefix, 200_000_000), { instanceOf: SafetensorsError, message: /150000000 is over the 100000000-byte limit/ });
});

test("the header writer pads with spaces to a multiple of 8 and refuses a repeated name", (t) => {
  for (let n = 1; n <= 9; n++) {
    const { bytes } = encodeSafetensorsHeader([{ name: "x".repeat(n), dtype: "U8", shape: [1] }]);
    t.is(bytes.length % 8, 0);
    t.is(Number(bytes.readBigUInt64LE(0)), bytes.length - 8);
    t.regex(bytes.subarray(8).toString(), /^\{.*\} *$/);
  }
  t.throws(() => encodeSafetensorsHeader([{ name: "a", dtype: "U8", shape: [1] }, { name: "a", dtype: "U8", shape: [1] }]), { instanceOf: SafetensorsError, message: /"a" is reserved or repeated/ });
});

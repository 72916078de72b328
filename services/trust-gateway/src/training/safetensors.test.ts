import { mkdtemp, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { checkSafetensorsFile, checkSafetensorsHeader, SafetensorsError } from "./safetensors.js";

/** A safetensors file from a header object and a data section. */
function file(header: unknown, data: Buffer): Buffer {
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), data]);
}

const check = (b: Buffer) => checkSafetensorsHeader(b, b.length);

test("a well-formed file with several tensors, a scalar and metadata passes", (t) => {
  const b = file(
    {
      __metadata__: { format: "pt" },
      w: { dtype: "F32", shape: [2, 3], data_offsets: [0, 24] },
      step: { dtype: "I64", shape: [], data_offsets: [24, 32] },
      empty: { dtype: "F16", shape: [0], data_offsets: [32, 32] },
    },
    Buffer.alloc(32),
  );
  t.deepEqual(check(b), { tensors: 3, dataBytes: 32 });
});

test("malformed files are refused with a message that says what is wrong", (t) => {
  const bad = (b: Buffer, message: RegExp) => t.throws(() => check(b), { instanceOf: SafetensorsError, message });
  bad(Buffer.from("abc"), /too short/);
  const huge = Buffer.alloc(16);
  huge.writeBigUInt64LE(1000n);
  bad(huge, /header length \(1000 bytes\) does not fit a 16-byte file/);
  const notJson = Buffer.concat([Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]), Buffer.from("not json")]);
  bad(notJson, /not UTF-8 JSON/);
  bad(file({ w: { dtype: "F33", shape: [1], data_offsets: [0, 4] } }, Buffer.alloc(4)), /dtype "F33"/);
  bad(file({ w: { dtype: "F32", shape: [4], data_offsets: [0, 12] } }, Buffer.alloc(12)), /data_offsets \[0, 12\] \(12 bytes\) but F32 \[4\] needs 16 bytes/);
  bad(file({ w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, Buffer.alloc(8)), /cover 4 bytes of data but the file holds 8/);
  bad(file({ a: { dtype: "U8", shape: [2], data_offsets: [0, 2] }, b: { dtype: "U8", shape: [2], data_offsets: [1, 3] } }, Buffer.alloc(3)), /overlaps/);
  bad(file({ a: { dtype: "U8", shape: [1], data_offsets: [1, 2] } }, Buffer.alloc(2)), /gap of 1 bytes/);
  bad(file({}, Buffer.alloc(0)), /no tensors/);
  bad(file({ __metadata__: { n: 1 }, w: { dtype: "U8", shape: [1], data_offsets: [0, 1] } }, Buffer.alloc(1)), /__metadata__/);
  bad(file({ w: { dtype: "U8", shape: [-1], data_offsets: [0, 1] } }, Buffer.alloc(1)), /shape/);
});

test("a file on disk is checked from its header alone", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "flip-st-"));
  const good = path.join(dir, "good.safetensors");
  await writeFile(good, file({ w: { dtype: "F64", shape: [3], data_offsets: [0, 24] } }, Buffer.alloc(24)));
  t.deepEqual(await checkSafetensorsFile(good), { tensors: 1, dataBytes: 24 });
  const cut = path.join(dir, "cut.safetensors");
  await writeFile(cut, file({ w: { dtype: "F64", shape: [3], data_offsets: [0, 24] } }, Buffer.alloc(24)).subarray(0, 40));
  await t.throwsAsync(checkSafetensorsFile(cut), { instanceOf: SafetensorsError });
});

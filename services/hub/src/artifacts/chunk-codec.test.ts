import { randomBytes } from "node:crypto";
import test from "ava";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { DownloadResponseSchema, UploadRequestSchema } from "@flip/gen/flip/link/v1/link_pb.js";
import { decodeUploadRequest, downloadChunkHead } from "./chunk-codec.js";

/** `bytes` cut at `cuts`, as a message arrives over several network reads. */
function cutInto(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const at of [...cuts, bytes.length]) {
    parts.push(bytes.subarray(from, at));
    from = at;
  }
  return parts;
}

test("a chunk as every encoder writes it decodes to fromBinary's offset and bytes, its data left in the pieces it arrived in", (t) => {
  for (const offset of [0n, 1n, 300n, 2n ** 40n + 7n]) {
    for (const size of [1, 127, 128, 70_000]) {
      const data = randomBytes(size);
      const wire = toBinary(UploadRequestSchema, create(UploadRequestSchema, { part: { case: "chunk", value: { offset, data } } }));
      // Cuts inside the head (tags and lengths split across pieces) and inside the data.
      for (const cuts of [[], [1], [2, 3, 4], [5, 9, Math.floor(wire.length / 2)]]) {
        const parts = cutInto(wire, cuts.filter((c) => c < wire.length).sort((x, y) => x - y));
        const decoded = decodeUploadRequest(parts);
        const expected = fromBinary(UploadRequestSchema, wire).part;
        if (decoded.case !== "chunk" || expected.case !== "chunk") return t.fail("expected a chunk");
        t.is(BigInt(decoded.value.offset), expected.value.offset);
        const pieces = decoded.value.data as Uint8Array[];
        t.true(Array.isArray(pieces), "the data is the received pieces, not a joined copy");
        t.true(pieces.every((p) => p.buffer === wire.buffer));
        t.true(Buffer.concat(pieces).equals(expected.value.data));
      }
    }
  }
});

test("a chunk with its fields in another order, begin and finish are decoded by fromBinary", (t) => {
  const data = randomBytes(1000);
  const inner = new BinaryWriter().tag(2, WireType.LengthDelimited).bytes(data).tag(1, WireType.Varint).uint64(42).finish();
  const dataFirst = new BinaryWriter().tag(2, WireType.LengthDelimited).bytes(inner).finish();
  const chunk = decodeUploadRequest(cutInto(dataFirst, [3, 500]));
  if (chunk.case !== "chunk") return t.fail("expected a chunk");
  t.is(Number(chunk.value.offset), 42);
  t.true(Buffer.from(chunk.value.data as Uint8Array).equals(data));

  const begin = toBinary(UploadRequestSchema, create(UploadRequestSchema, { part: { case: "begin", value: { artifactId: "x", sizeBytes: 5n } } }));
  t.like(decodeUploadRequest([begin]), { case: "begin", value: { artifactId: "x", sizeBytes: 5n } });
  const finish = toBinary(UploadRequestSchema, create(UploadRequestSchema, { part: { case: "finish", value: { sha256: "ab" } } }));
  t.like(decodeUploadRequest(cutInto(finish, [1, 2])), { case: "finish", value: { sha256: "ab" } });
});

test("a download chunk's head followed by its data is one DownloadResponse", (t) => {
  const data = randomBytes(5000);
  for (const offset of [0, 4 * 1024 * 1024]) {
    const msg = fromBinary(DownloadResponseSchema, Buffer.concat([downloadChunkHead(offset, 9_000_000, data.length), data]));
    t.is(msg.offset, BigInt(offset));
    t.is(msg.sizeBytes, 9_000_000n);
    t.is(msg.sha256, "");
    t.true(Buffer.from(msg.data).equals(data));
  }
});

import { randomBytes } from "node:crypto";
import test from "ava";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { DownloadResponseSchema, UploadRequestSchema } from "@flip/gen/flip/link/v1/link_pb.js";
import { decodeDownloadResponse, uploadChunkHead } from "./chunk-codec.js";

test("a chunk's head followed by its data is the UploadRequest any protobuf decoder reads", (t) => {
  for (const offset of [0, 1, 127, 128, 16_383, 2 ** 40 + 5]) {
    for (const size of [0, 1, 127, 128, 1024 * 1024]) {
      const data = randomBytes(size);
      const m = fromBinary(UploadRequestSchema, Buffer.concat([uploadChunkHead(offset, data.length), data]));
      if (m.part.case !== "chunk") return t.fail("expected a chunk");
      t.is(m.part.value.offset, BigInt(offset));
      t.true(Buffer.from(m.part.value.data).equals(data));
    }
  }
});

test("a download chunk as the hub sends it keeps its data in the received pieces; any other layout decodes as usual", (t) => {
  const data = randomBytes(50_000);
  const hubLayout = Buffer.concat([
    new BinaryWriter().tag(1, WireType.Varint).uint64(4096).tag(3, WireType.Varint).uint64(90_000).tag(2, WireType.LengthDelimited).uint32(data.length).finish(),
    data,
  ]);
  const pieces = [hubLayout.subarray(0, 3), hubLayout.subarray(3, 20_000), hubLayout.subarray(20_000)];
  const fast = decodeDownloadResponse(pieces);
  t.like(fast, { offset: 4096, sizeBytes: 90_000, sha256: "" });
  t.true(fast.data.every((p) => p.buffer === hubLayout.buffer), "views, not a copy");
  t.true(Buffer.concat(fast.data).equals(data));

  const inNumberOrder = toBinary(DownloadResponseSchema, create(DownloadResponseSchema, { offset: 4096n, data, sizeBytes: 90_000n }));
  const slow = decodeDownloadResponse([inNumberOrder]);
  t.like(slow, { offset: 4096, sizeBytes: 90_000, sha256: "" });
  t.true(Buffer.concat(slow.data).equals(data));

  const last = toBinary(DownloadResponseSchema, create(DownloadResponseSchema, { offset: 90_000n, sizeBytes: 90_000n, sha256: "ab" }));
  t.deepEqual(decodeDownloadResponse([last]), { offset: 90_000, sizeBytes: 90_000, data: [], sha256: "ab" });
});

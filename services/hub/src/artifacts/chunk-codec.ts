import { fromBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { UploadRequestSchema, type UploadRequest } from "@flip/gen/flip/link/v1/link_pb.js";
import { joinParts, type MessageParts } from "@flip/shared/direct/envelope.js";
import { PartsReader } from "@flip/shared/protobuf/parts-reader.js";
import { InvalidInputError } from "../domain/errors.js";
import type { UploadChunkInput, UploadInput } from "./upload.js";

/**
 * The artifact messages that carry bytes, encoded and decoded for the direct routes without copying
 * those bytes: a chunk's data stays the views it arrived in, and a download's data is sent beside a
 * small encoded head.
 */

/** What an upload message carries; a chunk's data may be several views. */
export type UploadRequestPart = { case: "chunk"; value: UploadChunkInput } | Exclude<UploadRequest["part"], { case: "chunk" }>;

/** Tags of the usual chunk layout: UploadRequest.chunk (2, bytes), UploadChunk.offset (1, varint), UploadChunk.data (2, bytes). */
const REQUEST_CHUNK_TAG = (2 << 3) | WireType.LengthDelimited;
const CHUNK_OFFSET_TAG = (1 << 3) | WireType.Varint;
const CHUNK_DATA_TAG = (2 << 3) | WireType.LengthDelimited;

/**
 * Decodes one UploadRequest. A chunk in the layout every protobuf encoder writes (offset, then data to
 * the end of the message) keeps its data as views into `parts`; any other message is decoded by
 * `fromBinary` of the joined bytes, so other field orders, begin and finish decode as usual.
 */
export function decodeUploadRequest(parts: MessageParts): UploadRequestPart {
  const chunk = chunkInPlace(parts);
  return chunk ? { case: "chunk", value: chunk } : fromBinary(UploadRequestSchema, joinParts(parts)).part;
}

/** A message after `begin` as the upload domain takes it: a chunk or the finish; anything else is a malformed stream. */
export function uploadInput(part: UploadRequestPart): UploadInput {
  switch (part.case) {
    case "chunk":
      return part.value;
    case "finish":
      return { sha256: part.value.sha256 };
    case "begin":
      throw new InvalidInputError("begin", "only the first message of an upload may carry begin");
    default:
      throw new InvalidInputError("chunk", "every message after begin must carry a chunk or the finish");
  }
}

function chunkInPlace(parts: MessageParts): UploadChunkInput | undefined {
  const r = new PartsReader(parts);
  if (r.byte() !== REQUEST_CHUNK_TAG || r.varint() !== r.remaining) return undefined;
  let offset = 0;
  let tag = r.byte();
  if (tag === CHUNK_OFFSET_TAG) {
    const o = r.varint();
    if (o === undefined) return undefined;
    offset = o;
    tag = r.byte();
  }
  if (tag !== CHUNK_DATA_TAG || r.varint() !== r.remaining) return undefined;
  return { offset, data: r.rest() };
}

/**
 * The encoded DownloadResponse fields that go before a chunk's data: offset, size_bytes, then the data
 * field's tag and length. Sent with the data right after it, the two make one DownloadResponse (fields
 * may come in any order on the wire).
 */
export function downloadChunkHead(offset: number, sizeBytes: number, dataLength: number): Uint8Array {
  const w = new BinaryWriter();
  if (offset > 0) w.tag(1, WireType.Varint).uint64(offset);
  w.tag(3, WireType.Varint).uint64(sizeBytes);
  w.tag(2, WireType.LengthDelimited).uint32(dataLength);
  return w.finish();
}

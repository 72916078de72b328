import { fromBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { DownloadResponseSchema } from "@flip/gen/flip/link/v1/link_pb.js";
import { joinParts, type MessageParts } from "@flip/shared/direct/envelope.js";
import { PartsReader } from "@flip/shared/protobuf/parts-reader.js";

/**
 * The artifact messages that carry bytes, encoded and decoded without copying those bytes: an upload
 * chunk goes out as a few encoded bytes of head followed by the file's buffer, and a download chunk's
 * data stays in the buffers it arrived in.
 */

/** One DownloadResponse; `data` may be several views. */
export interface DownloadPiece {
  offset: number;
  sizeBytes: number;
  data: readonly Uint8Array[];
  /** Set on the last message only. */
  sha256: string;
}

/**
 * The encoded UploadRequest up to a chunk's data: the chunk field's tag and length, the offset, then the
 * data field's tag and length. The data itself follows on the wire.
 */
export function uploadChunkHead(offset: number, dataLength: number): Uint8Array {
  const offsetBytes = offset > 0 ? 1 + varintSize(offset) : 0;
  const chunkLength = offsetBytes + 1 + varintSize(dataLength) + dataLength;
  const w = new BinaryWriter().tag(2, WireType.LengthDelimited).uint32(chunkLength);
  if (offset > 0) w.tag(1, WireType.Varint).uint64(offset);
  return w.tag(2, WireType.LengthDelimited).uint32(dataLength).finish();
}

/**
 * Decodes one DownloadResponse. The layout the hub sends (offset, size_bytes, then data to the end)
 * keeps its data as views into `parts`; anything else (another server's field order, the last message
 * with the checksum) is decoded by `fromBinary` of the joined bytes.
 */
export function decodeDownloadResponse(parts: MessageParts): DownloadPiece {
  const inPlace = chunkInPlace(parts);
  if (inPlace) return inPlace;
  const m = fromBinary(DownloadResponseSchema, joinParts(parts));
  return { offset: Number(m.offset), sizeBytes: Number(m.sizeBytes), data: m.data.length > 0 ? [m.data] : [], sha256: m.sha256 };
}

const OFFSET_TAG = (1 << 3) | WireType.Varint;
const DATA_TAG = (2 << 3) | WireType.LengthDelimited;
const SIZE_TAG = (3 << 3) | WireType.Varint;

function chunkInPlace(parts: MessageParts): DownloadPiece | undefined {
  const r = new PartsReader(parts);
  let tag = r.byte();
  let offset = 0;
  if (tag === OFFSET_TAG) {
    const o = r.varint();
    if (o === undefined) return undefined;
    offset = o;
    tag = r.byte();
  }
  if (tag !== SIZE_TAG) return undefined;
  const sizeBytes = r.varint();
  if (sizeBytes === undefined || r.byte() !== DATA_TAG || r.varint() !== r.remaining) return undefined;
  return { offset, sizeBytes, data: r.rest(), sha256: "" };
}

function varintSize(n: number): number {
  let size = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) size++;
  return size;
}

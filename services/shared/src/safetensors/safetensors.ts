/**
 * The safetensors format (what trusts upload and the hub averages): an 8-byte little-endian header
 * length N, N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?:
 * {string: string}}`, then the data section, whose tensors' [begin, end) offsets are relative to it.
 * Reading validates everything the averaging relies on, so a malformed update fails with a message
 * that says what is wrong instead of averaging garbage.
 */
import { open } from "node:fs/promises";

export const DTYPE_BYTES = { F64: 8, F32: 4, F16: 2, BF16: 2, F8_E5M2: 1, F8_E4M3: 1, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1 } as const;
export type Dtype = keyof typeof DTYPE_BYTES;
export const FLOAT_DTYPES: ReadonlySet<Dtype> = new Set<Dtype>(["F64", "F32", "F16", "BF16"]);

/** The safetensors reference implementation's limit; a larger header is refused before it is read. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Byte offsets [begin, end) within the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** The JSON header's length in bytes (N); the data section starts at byte 8 + N. */
  headerBytes: number;
  dataStart: number;
  dataBytes: number;
  /** In data order (by begin offset), which is the order a rewritten file keeps. */
  tensors: TensorInfo[];
  metadata: Record<string, string> | undefined;
}

/** A file or buffer that is not valid safetensors; the message says what is wrong. */
export class SafetensorsError extends Error {
  override readonly name = "SafetensorsError";
}

/**
 * Parses and validates a whole safetensors file held in memory (initial weights on model create).
 * `fileSize` is the file's real size when `bytes` holds only its start (8 + N bytes at least).
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileSize = bytes.byteLength): SafetensorsHeader {
  if (fileSize < 8) throw new SafetensorsError(`the file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = checkHeaderLength(view.getBigUint64(0, true), fileSize);
  if (bytes.byteLength < 8 + headerBytes) throw new SafetensorsError(`only ${bytes.byteLength} bytes given of a ${8 + headerBytes}-byte header`);
  return parseHeaderJson(bytes.subarray(8, 8 + headerBytes), fileSize);
}

/** Reads and validates the header of a safetensors file (the data section is not read). */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    if (size < 8) throw new SafetensorsError(`the file is ${size} bytes, shorter than the 8-byte header length`);
    const prefix = Buffer.alloc(8);
    await readFully(fh, prefix, 0);
    const headerBytes = checkHeaderLength(prefix.readBigUInt64LE(0), size);
    const json = Buffer.alloc(headerBytes);
    await readFully(fh, json, 8);
    return parseHeaderJson(json, size);
  } finally {
    await fh.close();
  }
}

async function readFully(fh: Awaited<ReturnType<typeof open>>, into: Buffer, position: number): Promise<void> {
  for (let done = 0; done < into.length; ) {
    const { bytesRead } = await fh.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new SafetensorsError(`the file ended at byte ${position + done} while reading its header`);
    done += bytesRead;
  }
}

function checkHeaderLength(length: bigint, fileSize: number): number {
  if (length > BigInt(fileSize - 8)) throw new SafetensorsError(`the header length ${length} runs past the end of the ${fileSize}-byte file`);
  if (length > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(`the header length ${length} is over the ${MAX_HEADER_BYTES}-byte limit`);
  if (length < 2n) throw new SafetensorsError(`the header length ${length} is too short for a JSON object`);
  return Number(length);
}

function parseHeaderJson(json: Uint8Array, fileSize: number): SafetensorsHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch (e) {
    throw new SafetensorsError(`the header is not UTF-8 JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new SafetensorsError("the header is not a JSON object");
  const headerBytes = json.byteLength;
  const dataStart = 8 + headerBytes;
  const dataBytes = fileSize - dataStart;
  let metadata: Record<string, string> | undefined;
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === "__metadata__") {
      metadata = checkMetadata(entry);
      continue;
    }
    const t = checkTensor(name, entry);
    if (t.end > dataBytes) throw new SafetensorsError(`tensor "${name}": data_offsets [${t.begin}, ${t.end}] run past the end of the ${dataBytes}-byte data section`);
    tensors.push(t);
  }
  // Stable: empty tensors sharing an offset keep their header order.
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const t of tensors) {
    if (t.begin < at) throw new SafetensorsError(`tensor "${t.name}": data_offsets [${t.begin}, ${t.end}] overlap the tensor before it, which ends at ${at}`);
    if (t.begin > at) throw new SafetensorsError(`tensor "${t.name}": data_offsets [${t.begin}, ${t.end}] leave a gap of ${t.begin - at} bytes after offset ${at}`);
    at = t.end;
  }
  if (at !== dataBytes) throw new SafetensorsError(`the tensors cover ${at} bytes but the data section holds ${dataBytes}`);
  return { headerBytes, dataStart, dataBytes, tensors, metadata };
}

function checkMetadata(entry: unknown): Record<string, string> {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new SafetensorsError(`"__metadata__" is not an object of strings`);
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== "string") throw new SafetensorsError(`"__metadata__"."${k}" is not a string`);
  }
  return entry as Record<string, string>;
}

function checkTensor(name: string, entry: unknown): TensorInfo {
  const bad = (what: string) => new SafetensorsError(`tensor "${name}": ${what}`);
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw bad("is not an object with dtype, shape and data_offsets");
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    throw bad(`dtype ${JSON.stringify(dtype)} is not one of ${Object.keys(DTYPE_BYTES).join(", ")}`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) throw bad(`data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw bad(`data_offsets [${begin}, ${end}] end before they begin`);
  const elements = (shape as number[]).reduce((p, d) => p * d, 1);
  const want = elements * DTYPE_BYTES[dtype as Dtype];
  if (!Number.isSafeInteger(want)) throw bad(`shape [${shape.join(", ")}] is too large`);
  if (end - begin !== want) throw bad(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} [${shape.join(", ")}] needs ${want}`);
  return { name, dtype: dtype as Dtype, shape: shape as number[], begin, end };
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/**
 * The bytes of a header for `tensors` laid out contiguously in the order given: the 8-byte length and
 * the JSON, padded with spaces so the data section starts at a multiple of 8.
 */
export function encodeSafetensorsHeader(
  tensors: readonly { name: string; dtype: Dtype; shape: readonly number[] }[],
  metadata?: Record<string, string>,
): { bytes: Buffer; tensors: TensorInfo[]; dataBytes: number } {
  const json: Record<string, unknown> = {};
  if (metadata) json.__metadata__ = metadata;
  const laid: TensorInfo[] = [];
  let at = 0;
  for (const t of tensors) {
    if (t.name === "__metadata__" || Object.hasOwn(json, t.name)) throw new SafetensorsError(`tensor name "${t.name}" is reserved or repeated`);
    const size = t.shape.reduce((p, d) => p * d, 1) * DTYPE_BYTES[t.dtype];
    laid.push({ name: t.name, dtype: t.dtype, shape: [...t.shape], begin: at, end: at + size });
    json[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + size] };
    at += size;
  }
  const text = Buffer.from(JSON.stringify(json));
  const padded = Math.ceil(text.length / 8) * 8;
  const bytes = Buffer.alloc(8 + padded, 0x20);
  bytes.writeBigUInt64LE(BigInt(padded), 0);
  text.copy(bytes, 8);
  return { bytes, tensors: laid, dataBytes: at };
}

/** A whole safetensors file in memory (tests, benchmarks, small weights). */
export function serializeSafetensors(
  tensors: readonly { name: string; dtype: Dtype; shape: readonly number[]; data: ArrayBufferView }[],
  metadata?: Record<string, string>,
): Buffer {
  const header = encodeSafetensorsHeader(tensors, metadata);
  const parts: Uint8Array[] = [header.bytes];
  tensors.forEach((t, i) => {
    const data = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const laid = header.tensors[i]!;
    if (data.byteLength !== laid.end - laid.begin) throw new SafetensorsError(`tensor "${t.name}": ${data.byteLength} bytes of data for ${t.dtype} [${t.shape.join(", ")}], which needs ${laid.end - laid.begin}`);
    parts.push(data);
  });
  return Buffer.concat(parts);
}

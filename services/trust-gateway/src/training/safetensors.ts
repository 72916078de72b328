import { open } from "node:fs/promises";

/** Why bytes are not a well-formed safetensors file; the message says what to fix and is safe to show the workload. */
export class SafetensorsError extends Error {
  override readonly name = "SafetensorsError";
}

/** Bytes per element of the dtypes safetensors defines. */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

/** safetensors' own limit on the JSON header. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const HOW_TO_WRITE = "write it with safetensors' save_file or flip.safetensors in the Python SDK";

export interface SafetensorsSummary {
  tensors: number;
  /** Bytes of tensor data (after the header). */
  dataBytes: number;
}

/**
 * Checks the layout of a safetensors file of `fileSize` bytes from its header: an 8-byte little-endian
 * header length, a JSON object of tensors (dtype, shape, data_offsets) and an optional `__metadata__` of
 * strings, then tensor data that the offsets cover exactly, each tensor's extent matching its dtype and
 * shape. Tensor values are not read (any bytes are valid numbers).
 */
export function checkSafetensorsHeader(header: Uint8Array, fileSize: number): SafetensorsSummary {
  if (fileSize < 8) throw new SafetensorsError(`the update is ${fileSize} bytes, too short for a safetensors file (8-byte header length first); ${HOW_TO_WRITE}`);
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const length = view.getBigUint64(0, true);
  if (length === 0n || length > BigInt(MAX_HEADER_BYTES) || 8n + length > BigInt(fileSize)) {
    throw new SafetensorsError(`the update's header length (${length} bytes) does not fit a ${fileSize}-byte file; ${HOW_TO_WRITE}`);
  }
  const headerLength = Number(length);
  if (header.byteLength < 8 + headerLength) throw new SafetensorsError("the update's header was cut short");
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(header.subarray(8, 8 + headerLength)));
  } catch {
    throw new SafetensorsError(`the update's header is not UTF-8 JSON; ${HOW_TO_WRITE}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new SafetensorsError(`the update's header is not a JSON object of tensors; ${HOW_TO_WRITE}`);
  const dataBytes = fileSize - 8 - headerLength;
  const extents: { name: string; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === "__metadata__") {
      checkMetadata(entry);
      continue;
    }
    extents.push(checkTensor(name, entry));
  }
  if (extents.length === 0) throw new SafetensorsError("the update holds no tensors");
  extents.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of extents) {
    if (e.begin !== at) {
      throw new SafetensorsError(
        e.begin < at ? `tensor "${clip(e.name)}" overlaps the tensor before it in the data section` : `the data section has a gap of ${e.begin - at} bytes before tensor "${clip(e.name)}"`,
      );
    }
    at = e.end;
  }
  if (at !== dataBytes) throw new SafetensorsError(`the tensors cover ${at} bytes of data but the file holds ${dataBytes} after its header; ${HOW_TO_WRITE}`);
  return { tensors: extents.length, dataBytes };
}

/** Reads the header of the file at `file` and checks it (see checkSafetensorsHeader). */
export async function checkSafetensorsFile(file: string): Promise<SafetensorsSummary> {
  const fh = await open(file, "r");
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(Math.min(size, 8));
    await fh.read(head, 0, head.length, 0);
    if (size < 8) return checkSafetensorsHeader(head, size);
    const length = head.readBigUInt64LE(0);
    if (length === 0n || length > BigInt(MAX_HEADER_BYTES) || 8n + length > BigInt(size)) return checkSafetensorsHeader(head, size);
    const header = Buffer.alloc(8 + Number(length));
    await fh.read(header, 0, header.length, 0);
    return checkSafetensorsHeader(header, size);
  } finally {
    await fh.close();
  }
}

function checkTensor(name: string, entry: unknown): { name: string; begin: number; end: number } {
  if (typeof entry !== "object" || entry === null) throw new SafetensorsError(`tensor "${clip(name)}" is not an object with dtype, shape and data_offsets`);
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  const size = typeof dtype === "string" ? DTYPE_BYTES[dtype] : undefined;
  if (size === undefined) throw new SafetensorsError(`tensor "${clip(name)}" has dtype ${clip(JSON.stringify(dtype) ?? "none")}; expected one of ${Object.keys(DTYPE_BYTES).join(", ")}`);
  if (!Array.isArray(shape) || !shape.every(isCount)) throw new SafetensorsError(`tensor "${clip(name)}" has a shape that is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw new SafetensorsError(`tensor "${clip(name)}" has data_offsets that are not [begin, end] with begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  const expected = (shape as number[]).reduce((n, d) => n * d, 1) * size;
  if (end - begin !== expected) {
    throw new SafetensorsError(`tensor "${clip(name)}" has data_offsets [${begin}, ${end}] (${end - begin} bytes) but ${dtype} ${JSON.stringify(shape)} needs ${expected} bytes`);
  }
  return { name, begin, end };
}

function checkMetadata(entry: unknown): void {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry) || !Object.values(entry).every((v) => typeof v === "string")) {
    throw new SafetensorsError('the header\'s "__metadata__" must map names to strings');
  }
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Tensor names come from the workload: keep messages short. */
function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

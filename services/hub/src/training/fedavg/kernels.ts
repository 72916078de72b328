/**
 * The averaging's inner loops as WebAssembly SIMD, assembled here from a few opcodes (no toolchain,
 * no binary blob in the repository). JavaScript's scalar loops reach about a fifth of memory-copy
 * speed on a float32 multiply-add into float64; two lanes at a time with the loads and stores of a
 * memory copy keep the averaging close to the cost of reading the bytes.
 *
 * Every kernel takes byte addresses in the kernel memory and an element count, and computes exactly
 * what the scalar expression in its comment computes (IEEE double arithmetic, no fused multiply-add),
 * so results do not depend on how elements fall into vectors.
 */

// The project's libs ("es2023", no "dom") declare no WebAssembly types; these are the parts used here.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (descriptor: { initial: number }) => WasmMemory;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Kernels over one WebAssembly memory; addresses are byte offsets into `memory.buffer`. */
export interface Kernels {
  memory: WasmMemory;
  /** acc[i] = w * f64(src[i]), src float32 */
  f32Init(acc: number, src: number, n: number, w: number): void;
  /** acc[i] = acc[i] + w * f64(src[i]), src float32 */
  f32Add(acc: number, src: number, n: number, w: number): void;
  /** dst[i] = f32(acc[i]) */
  f32Demote(dst: number, acc: number, n: number): void;
  /** acc[i] = w * src[i], src float64 */
  f64Init(acc: number, src: number, n: number, w: number): void;
  /** acc[i] = acc[i] + w * src[i], src float64 */
  f64Add(acc: number, src: number, n: number, w: number): void;
  /** dst[i] = bits(src[i]) << 16 as float32: bfloat16 widened exactly */
  bf16Widen(dst: number, src: number, n: number): void;
}

const PAGE = 65_536;

let compiled: object | undefined;

/** Instantiates the kernels over a fresh memory of at least `bytes` bytes. */
export function createKernels(bytes: number): Kernels {
  compiled ??= new wasm.Module(assemble());
  const memory = new wasm.Memory({ initial: Math.max(1, Math.ceil(bytes / PAGE)) });
  const { exports } = new wasm.Instance(compiled, { env: { memory } });
  return { memory, ...(exports as unknown as Omit<Kernels, "memory">) };
}

// ---- a minimal assembler ---------------------------------------------------------------------------

const I32 = 0x7f;
const F64 = 0x7c;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const name = (s: string) => vec([...Buffer.from(s)].map((b) => [b]));
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

// Instructions (core and the 0xfd SIMD prefix); `a` is the log2 alignment hint, `o` the static offset.
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const i32c = (v: number) => [0x41, ...sleb(v)];
const i32Add = [0x6a];
const i32And = [0x71];
const i32Mul = [0x6c];
const i32Shl = [0x74];
const i32GeU = [0x4f];
const f32Load = (o = 0) => [0x2a, 2, ...uleb(o)];
const f64Load = (o = 0) => [0x2b, 3, ...uleb(o)];
const f32Store = (o = 0) => [0x38, 2, ...uleb(o)];
const f64Store = (o = 0) => [0x39, 3, ...uleb(o)];
const i32Load16U = (o = 0) => [0x2f, 1, ...uleb(o)];
const i32Store = (o = 0) => [0x36, 2, ...uleb(o)];
const f64Add = [0xa0];
const f64Mul = [0xa2];
const f32DemoteF64 = [0xb6];
const f64Promote = [0xbb];
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
const v128Load = (o = 0) => simd(0x00, 4, ...uleb(o));
const v128Store = (o = 0) => simd(0x0b, 4, ...uleb(o));
const v128Load64Zero = (o = 0) => simd(0x5d, 3, ...uleb(o));
const v128Store64Lane0 = (o = 0) => simd(0x5b, 3, ...uleb(o), 0);
const v128Load16x4U = (o = 0) => simd(0x04, 3, ...uleb(o));
const f64x2Splat = simd(0x14);
const i32x4Shl = simd(0xab);
const f32x4DemoteZero = simd(0x5e);
const f64x2PromoteLow = simd(0x5f);
const f64x2Add = simd(0xf0);
const f64x2Mul = simd(0xf2);

/**
 * A loop over elements, `unroll` vector steps per turn, then a scalar tail. Locals 0-2 are (dst, src, n);
 * local `end` and `tailEnd` are scratch i32s. `vector(k)` emits step k; `scalar` emits one element;
 * `dstStep`/`srcStep` are the bytes per vector step and `dstSize`/`srcSize` per element.
 */
function elementLoop(opts: {
  perStep: number;
  unroll: number;
  dstSize: number;
  srcSize: number;
  vector: (k: number) => number[];
  scalar: number[];
  end: number;
  tailEnd: number;
}): number[] {
  const { perStep, unroll, dstSize, srcSize, end, tailEnd } = opts;
  const perTurn = perStep * unroll;
  const advance = (elements: number) => [...get(0), ...i32c(elements * dstSize), ...i32Add, ...set(0), ...get(1), ...i32c(elements * srcSize), ...i32Add, ...set(1)];
  const loop = (endLocal: number, body: number[], elements: number) => [
    0x02, 0x40, 0x03, 0x40,
    ...get(1), ...get(endLocal), ...i32GeU, 0x0d, 1,
    ...body,
    ...advance(elements),
    0x0c, 0,
    0x0b, 0x0b,
  ];
  return [
    // end = src + (n rounded down to a whole turn) * srcSize; tailEnd = src + n * srcSize
    ...get(1), ...get(2), ...i32c(-perTurn), ...i32And, ...i32c(srcSize), ...i32Mul, ...i32Add, ...set(end),
    ...get(1), ...get(2), ...i32c(srcSize), ...i32Mul, ...i32Add, ...set(tailEnd),
    ...loop(end, Array.from({ length: unroll }, (_, k) => opts.vector(k)).flat(), perTurn),
    ...loop(tailEnd, opts.scalar, 1),
  ];
}

interface Fn {
  name: string;
  params: number[];
  locals: number[];
  body: number[];
}

/** (acc, src, n, w): acc = [acc +] w * f64(src) over float32 src, 2 lanes per step. */
function f32Accumulate(fnName: string, add: boolean): Fn {
  const [end, tailEnd, wv] = [4, 5, 6];
  const step = (k: number) => [
    ...get(0),
    ...(add ? [...get(0), ...v128Load(16 * k)] : []),
    ...get(1), ...v128Load64Zero(8 * k), ...f64x2PromoteLow, ...get(wv), ...f64x2Mul,
    ...(add ? f64x2Add : []),
    ...v128Store(16 * k),
  ];
  const scalar = [
    ...get(0),
    ...(add ? [...get(0), ...f64Load()] : []),
    ...get(3), ...get(1), ...f32Load(), ...f64Promote, ...f64Mul,
    ...(add ? f64Add : []),
    ...f64Store(),
  ];
  return {
    name: fnName,
    params: [I32, I32, I32, F64],
    locals: [I32, I32, V128],
    body: [...get(3), ...f64x2Splat, ...set(wv), ...elementLoop({ perStep: 2, unroll: 4, dstSize: 8, srcSize: 4, vector: step, scalar, end, tailEnd })],
  };
}

/** (acc, src, n, w): acc = [acc +] w * src over float64 src. */
function f64Accumulate(fnName: string, add: boolean): Fn {
  const [end, tailEnd, wv] = [4, 5, 6];
  const step = (k: number) => [
    ...get(0),
    ...(add ? [...get(0), ...v128Load(16 * k)] : []),
    ...get(1), ...v128Load(16 * k), ...get(wv), ...f64x2Mul,
    ...(add ? f64x2Add : []),
    ...v128Store(16 * k),
  ];
  const scalar = [...get(0), ...(add ? [...get(0), ...f64Load()] : []), ...get(3), ...get(1), ...f64Load(), ...f64Mul, ...(add ? f64Add : []), ...f64Store()];
  return {
    name: fnName,
    params: [I32, I32, I32, F64],
    locals: [I32, I32, V128],
    body: [...get(3), ...f64x2Splat, ...set(wv), ...elementLoop({ perStep: 2, unroll: 4, dstSize: 8, srcSize: 8, vector: step, scalar, end, tailEnd })],
  };
}

/** (dst, acc, n): dst = f32(acc). */
function f32DemoteKernel(): Fn {
  const [end, tailEnd] = [3, 4];
  const step = (k: number) => [...get(0), ...get(1), ...v128Load(16 * k), ...f32x4DemoteZero, ...v128Store64Lane0(8 * k)];
  const scalar = [...get(0), ...get(1), ...f64Load(), ...f32DemoteF64, ...f32Store()];
  return {
    name: "f32Demote",
    params: [I32, I32, I32],
    locals: [I32, I32],
    body: elementLoop({ perStep: 2, unroll: 4, dstSize: 4, srcSize: 8, vector: step, scalar, end, tailEnd }),
  };
}

/** (dst, src, n): dst (u32) = src (u16) << 16. */
function bf16Widen(): Fn {
  const [end, tailEnd] = [3, 4];
  const step = (k: number) => [...get(0), ...get(1), ...v128Load16x4U(8 * k), ...i32c(16), ...i32x4Shl, ...v128Store(16 * k)];
  const scalar = [...get(0), ...get(1), ...i32Load16U(), ...i32c(16), ...i32Shl, ...i32Store()];
  return {
    name: "bf16Widen",
    params: [I32, I32, I32],
    locals: [I32, I32],
    body: elementLoop({ perStep: 4, unroll: 2, dstSize: 4, srcSize: 2, vector: step, scalar, end, tailEnd }),
  };
}

function assemble(): Uint8Array<ArrayBuffer> {
  const fns = [f32Accumulate("f32Init", false), f32Accumulate("f32Add", true), f32DemoteKernel(), f64Accumulate("f64Init", false), f64Accumulate("f64Add", true), bf16Widen()];
  const types = fns.map((f) => [0x60, ...vec(f.params.map((p) => [p])), 0]);
  const code = fns.map((f) => {
    const body = [...vec(f.locals.map((l) => [1, l])), ...f.body, 0x0b];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec([[...name("env"), ...name("memory"), 0x02, 0x00, 0x01]])),
    ...section(3, vec(fns.map((_, i) => uleb(i)))),
    ...section(7, vec(fns.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(code)),
  ]);
}

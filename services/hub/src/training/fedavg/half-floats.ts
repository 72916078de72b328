/**
 * float16 and bfloat16 to and from wider floats. Averages are accumulated in float64 and written back
 * rounded to nearest, ties to even, as if directly from float64: the value is first narrowed to
 * float32 with round-to-odd, which makes the second rounding exact (float32 has more than two bits to
 * spare over either 16-bit format), then rounded to nearest even from float32's bits.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float16 bits → value (exact; every float16 is a float32). */
export function f16ToNumber(h: number): number {
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** bfloat16 bits → value (exact: the top half of a float32). */
export function bf16ToNumber(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

let f16Table: Float32Array | undefined;
/** All 65,536 float16 values, indexed by their bits (256 KiB, built once). */
export function float16Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65_536);
    for (let h = 0; h < 65_536; h++) f16Table[h] = f16ToNumber(h);
  }
  return f16Table;
}

/** The float32 bits of `x` rounded toward zero, with the lowest bit set when that was inexact. */
function f32BitsRoundToOdd(x: number): number {
  const f = Math.fround(x);
  f32[0] = f;
  let bits = u32[0]!;
  if (f !== x && x === x) {
    if (Math.abs(f) > Math.abs(x)) bits -= 1;
    bits |= 1;
  }
  return bits;
}

/** float32 bits → float16 bits, to nearest even. */
function f32BitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const a = bits & 0x7fffffff;
  if (a >= 0x7f800000) return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00);
  // 65520 and above round to infinity.
  if (a >= 0x477ff000) return sign | 0x7c00;
  // Below 2^-14 the result is subnormal: a count of 2^-24 steps.
  if (a < 0x38800000) {
    const e = a >>> 23;
    if (e < 102) return sign;
    const m = (a & 0x7fffff) | 0x800000;
    const shift = 126 - e;
    let r = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  const rebased = a - 0x38000000;
  return sign | ((rebased + 0xfff + ((rebased >>> 13) & 1)) >>> 13);
}

/** float32 bits → bfloat16 bits, to nearest even. */
function f32BitsToBf16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const a = bits & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7fc0;
  return sign | ((a + 0x7fff + ((a >>> 16) & 1)) >>> 16);
}

/** `x` as float16 bits, rounded to nearest, ties to even. */
export function numberToF16(x: number): number {
  return f32BitsToF16(f32BitsRoundToOdd(x));
}

/** `x` as bfloat16 bits, rounded to nearest, ties to even. */
export function numberToBf16(x: number): number {
  return f32BitsToBf16(f32BitsRoundToOdd(x));
}

/** dst[i] = numberToF16(src[i]) */
export function encodeF16(dst: Uint16Array, src: Float64Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = f32BitsToF16(f32BitsRoundToOdd(src[i]!));
}

/** dst[i] = numberToBf16(src[i]) */
export function encodeBf16(dst: Uint16Array, src: Float64Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = f32BitsToBf16(f32BitsRoundToOdd(src[i]!));
}

/** dst[i] = value of float16 src[i] */
export function decodeF16(dst: Float32Array, src: Uint16Array): void {
  const table = float16Table();
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]!]!;
}

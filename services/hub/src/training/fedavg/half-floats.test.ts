import test from "ava";
import { bf16ToNumber, f16ToNumber, numberToBf16, numberToF16 } from "./half-floats.js";

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);
/** The next float64 above (step 1) or below (step -1) a positive x. */
function nextFloat(x: number, step: 1 | -1): number {
  f64[0] = x;
  u64[0]! += BigInt(step);
  return f64[0]!;
}

/** Finite non-negative values of a 16-bit format in increasing order, with their bits. */
function positives(decode: (bits: number) => number): { value: number; bits: number }[] {
  const out: { value: number; bits: number }[] = [];
  for (let bits = 0; bits < 0x8000; bits++) {
    const value = decode(bits);
    if (Number.isFinite(value)) out.push({ value, bits });
  }
  return out;
}

for (const [format, decode, encode, infinity] of [
  ["float16", f16ToNumber, numberToF16, 0x7c00],
  ["bfloat16", bf16ToNumber, numberToBf16, 0x7f80],
] as const) {
  test(`every ${format} value converts to float64 and back unchanged, either sign`, (t) => {
    let checked = 0;
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = decode(bits);
      if (Number.isNaN(value)) continue;
      if (encode(value) !== bits) t.fail(`${format} ${bits.toString(16)} (${value}) came back as ${encode(value).toString(16)}`);
      checked++;
    }
    t.true(checked > 63_000);
  });

  test(`${format}: a float64 halfway between two values rounds to the even one, and the next float64 either side to the nearer one`, (t) => {
    // The case a float64 → float32 → 16-bit double rounding gets wrong: just above a midpoint, float32
    // rounds onto the midpoint and the tie then goes to the even neighbour, which may be the farther.
    const values = positives(decode);
    const top = values[values.length - 1]!;
    // Beyond the largest finite value the next step is infinity, whose bits are even.
    values.push({ value: top.value + (top.value - values[values.length - 2]!.value), bits: infinity });
    let failures = 0;
    for (let i = 0; i + 1 < values.length; i++) {
      const lo = values[i]!;
      const hi = values[i + 1]!;
      const mid = (lo.value + hi.value) / 2;
      const even = lo.bits % 2 === 0 ? lo.bits : hi.bits;
      for (const [x, want] of [
        [mid, even],
        [nextFloat(mid, 1), hi.bits],
        [nextFloat(mid, -1), lo.bits],
      ] as const) {
        if (encode(x) !== want || encode(-x) !== (want | 0x8000)) {
          if (failures++ < 5) t.fail(`${format}: ${x} gave ${encode(x).toString(16)}, expected ${want.toString(16)}`);
        }
      }
    }
    t.is(failures, 0);
  });

  test(`${format}: NaN stays NaN, infinities and signed zeros keep their sign`, (t) => {
    t.true(Number.isNaN(decode(encode(NaN))));
    t.is(encode(Infinity), infinity);
    t.is(encode(-Infinity), infinity | 0x8000);
    t.is(encode(0), 0);
    t.is(encode(-0), 0x8000);
    t.is(encode(1e-300), 0);
    t.is(encode(1e300), infinity);
  });
}

test("float16 known values: 1/3, the largest finite value, the smallest subnormal", (t) => {
  t.is(numberToF16(1 / 3), 0x3555);
  t.is(numberToF16(65504), 0x7bff);
  t.is(numberToF16(65519.99), 0x7bff);
  t.is(numberToF16(65520), 0x7c00);
  t.is(numberToF16(2 ** -24), 0x0001);
  t.is(numberToF16(2 ** -25), 0x0000);
  t.is(numberToF16(nextFloat(2 ** -25, 1)), 0x0001);
  t.is(f16ToNumber(0x3c00), 1);
});

test("bfloat16 known values: 1/3, pi, a float32 subnormal", (t) => {
  t.is(numberToBf16(1 / 3), 0x3eab);
  t.is(numberToBf16(Math.PI), 0x4049);
  t.is(numberToBf16(2 ** -133), 0x0001);
  t.is(bf16ToNumber(0x3f80), 1);
});

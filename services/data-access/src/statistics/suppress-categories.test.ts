import test from "ava";
import { suppressCategories, type CategoryCell, type SuppressedCategories } from "./suppress-categories.js";

/** Cells where every record is a different person. */
function cells(counts: Record<string, number>): CategoryCell[] {
  return Object.entries(counts).map(([value, count]) => ({ value, count, subjects: new Set(Array.from({ length: count }, (_, i) => `${value}#${i}`)) }));
}

const total = (counts: Record<string, number>) => Object.values(counts).reduce((s, c) => s + c, 0);

test("nothing is hidden when every category reaches the threshold", (t) => {
  t.deepEqual(suppressCategories(cells({ a: 40, b: 12, c: 10 }), 10), {
    categories: [
      { value: "a", count: 40 },
      { value: "b", count: 12 },
      { value: "c", count: 10 },
    ],
    otherCount: 0,
    hasSuppressed: false,
  });
});

test("a single small category is never hidden alone: the next smallest is hidden with it", (t) => {
  const out = suppressCategories(cells({ male: 52, female: 47, unknown: 3 }), 10);
  t.deepEqual(out.categories, [{ value: "male", count: 52 }]);
  t.is(out.otherCount, 50);
  t.true(out.hasSuppressed);
});

test("small categories whose total is below the threshold pull in the smallest shown one", (t) => {
  const out = suppressCategories(cells({ a: 30, b: 20, c: 2, d: 3 }), 10);
  t.deepEqual(out.categories, [{ value: "a", count: 30 }]);
  t.is(out.otherCount, 25);
});

test("two small categories that total at least the threshold are folded without hiding more", (t) => {
  const out = suppressCategories(cells({ a: 30, b: 20, c: 4, d: 7 }), 10);
  t.deepEqual(out.categories, [
    { value: "a", count: 30 },
    { value: "b", count: 20 },
  ]);
  t.is(out.otherCount, 11);
});

test("categories tied at the smallest count are hidden together, so labels never decide what is hidden", (t) => {
  const out = suppressCategories(cells({ a: 30, b: 12, c: 12, d: 2 }), 10);
  t.deepEqual(out.categories, [{ value: "a", count: 30 }]);
  t.is(out.otherCount, 26);
});

test("hidden categories that would all be pinned at T-1 pull in one more", (t) => {
  const out = suppressCategories(cells({ a: 50, b: 12, c: 9, d: 9 }), 10);
  t.deepEqual(out.categories, [{ value: "a", count: 50 }]);
  t.is(out.otherCount, 30);
});

test("a category with many records but fewer than T persons is hidden, and not alone", (t) => {
  const few: CategoryCell = { value: "rare", count: 40, subjects: new Set(["p1", "p2"]) };
  const out = suppressCategories([...cells({ a: 30, b: 25 }), few], 10);
  t.deepEqual(out.categories, [{ value: "a", count: 30 }]);
  t.is(out.otherCount, 65);
});

test("at most maxCategories are listed and the rest are folded into other", (t) => {
  const counts = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`v${i}`, 20 + i]));
  const out = suppressCategories(cells(counts), 10, 5);
  t.is(out.categories.length, 5);
  t.is(out.categories.reduce((s, c) => s + c.count, 0) + out.otherCount, total(counts));
});

/** Deterministic PRNG for the property test (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every way to write `sum` as `parts` positive integers. */
function* compositions(sum: number, parts: number): Generator<number[]> {
  if (parts === 1) {
    if (sum >= 1) yield [sum];
    return;
  }
  for (let first = 1; first <= sum - parts + 1; first++) for (const rest of compositions(sum - first, parts - 1)) yield [first, ...rest];
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

/**
 * The strongest adversary we defend against: it sees the output and the record count, knows T and the
 * algorithm, and even knows which categories exist (so how many were hidden). It tries every way the
 * hidden total could split among the hidden categories and keeps the splits that reproduce the output.
 * A hidden count is disclosed when every such split gives that category the same count.
 */
function disclosedHiddenCounts(original: Record<string, number>, out: SuppressedCategories, threshold: number): string[] {
  const shown = new Set(out.categories.map((c) => c.value));
  const hidden = Object.keys(original).filter((v) => !shown.has(v));
  const hiddenTotal = total(original) - out.categories.reduce((s, c) => s + c.count, 0);
  const seen = hidden.map(() => new Set<number>());
  const expected = JSON.stringify(out);
  for (const split of compositions(hiddenTotal, hidden.length)) {
    const candidate: Record<string, number> = Object.fromEntries(out.categories.map((c) => [c.value, c.count]));
    hidden.forEach((v, i) => (candidate[v] = split[i]!));
    if (JSON.stringify(suppressCategories(cells(candidate), threshold)) === expected) split.forEach((c, i) => seen[i]!.add(c));
  }
  return hidden.filter((_, i) => seen[i]!.size < 2);
}

test("no hidden count can be worked out from the published numbers, over many random distributions", (t) => {
  const random = prng(20_240_601);
  let checked = 0;
  for (let run = 0; run < 400; run++) {
    const threshold = [3, 5, 10][Math.floor(random() * 3)]!;
    const k = 2 + Math.floor(random() * 4);
    const counts: Record<string, number> = {};
    for (let i = 0; i < k; i++) counts[`c${i}`] = 1 + Math.floor(random() * (random() < 0.6 ? threshold + 2 : 3 * threshold));
    if (total(counts) < threshold) continue;
    const out = suppressCategories(cells(counts), threshold);
    const shownTotal = out.categories.reduce((s, c) => s + c.count, 0);
    t.is(shownTotal + out.otherCount, total(counts), `totals must add up for ${JSON.stringify(counts)}`);
    if (!out.hasSuppressed) continue;
    t.true(out.otherCount >= threshold, `the hidden total must reach T for ${JSON.stringify(counts)}`);
    t.true(Object.keys(counts).length - out.categories.length >= 2, `at least two categories hidden for ${JSON.stringify(counts)}`);
    const hidden = Object.keys(counts).length - out.categories.length;
    // The documented residual case: everything hidden and all counts equal at 1 or T-1.
    const values = Object.values(counts);
    if (out.categories.length === 0 && values.every((c) => c === values[0]) && (values[0] === 1 || values[0] === threshold - 1)) continue;
    if (binomial(out.otherCount - 1, hidden - 1) > 50_000) continue;
    t.deepEqual(disclosedHiddenCounts(counts, out, threshold), [], `a hidden count is disclosed for ${JSON.stringify(counts)} at T=${threshold}`);
    checked++;
  }
  t.true(checked >= 150, `only ${checked} distributions were checked exhaustively`);
});

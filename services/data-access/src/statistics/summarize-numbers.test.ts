import test from "ava";
import { summarizeNumbers, type NumericValue } from "./summarize-numbers.js";

/** One value per person. */
const values = (xs: number[]): NumericValue[] => xs.map((value, i) => ({ value, subject: `p${i}` }));
const none = { rows: 0, subjects: 0 };
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test("quartiles interpolate between ranks as percentile_cont does", (t) => {
  const s = summarizeNumbers(values([4, 1, 3, 2]), none, 3)!;
  t.is(s.count, 4);
  t.is(s.mean, 2.5);
  t.is(s.p25, 1.75);
  t.is(s.median, 2.5);
  t.is(s.p75, 3.25);
  t.is(Math.round(s.stddev * 1e6) / 1e6, 1.290994);
});

test("fewer values than the threshold are withheld", (t) => {
  t.is(summarizeNumbers(values(range(1, 9)), none, 10), undefined);
  t.truthy(summarizeNumbers(values(range(1, 10)), none, 10));
});

test("values from fewer persons than the threshold are withheld, however many there are", (t) => {
  const repeated = range(1, 50).map((value, i) => ({ value, subject: `p${i % 3}` }));
  t.is(summarizeNumbers(repeated, none, 10), undefined);
});

test("a small number of missing values withholds the summary, since it would reveal that count", (t) => {
  t.is(summarizeNumbers(values(range(1, 50)), { rows: 3, subjects: 3 }, 10), undefined);
  t.truthy(summarizeNumbers(values(range(1, 50)), { rows: 12, subjects: 12 }, 10));
});

test("the true minimum and maximum are never reported", (t) => {
  const s = summarizeNumbers(values([...range(1, 100), 1000]), none, 10)!;
  t.is(s.min, 10);
  t.is(s.max, 92);
  t.true(s.min >= 10 && s.max < 1000);
});

test("reported extremes never fall outside the quartiles of a small cohort", (t) => {
  const s = summarizeNumbers(values(range(1, 12)), none, 10)!;
  t.is(s.min, s.p25);
  t.is(s.max, s.p75);
  t.true(s.min <= s.p25 && s.p25 <= s.median && s.median <= s.p75 && s.p75 <= s.max);
});

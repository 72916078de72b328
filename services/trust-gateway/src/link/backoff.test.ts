import test from "ava";
import { Backoff, sleep } from "./backoff.js";

test("waits double up to the cap and stay within the upper half of each ceiling", (t) => {
  const low = new Backoff(100, 1_000, () => 0);
  t.deepEqual([1, 2, 3, 4, 5, 6].map(() => low.next()), [50, 100, 200, 400, 500, 500]);
  const high = new Backoff(100, 1_000, () => 0.999999);
  t.deepEqual([1, 2, 3, 4, 5, 6].map(() => high.next()), [100, 200, 400, 800, 1_000, 1_000]);
});

test("a reset after a working link starts again from the shortest wait", (t) => {
  const b = new Backoff(200, 30_000, () => 1);
  b.next();
  b.next();
  t.is(b.failures, 2);
  b.reset();
  t.is(b.next(), 200);
});

test("random jitter spreads the waits of many gateways", (t) => {
  const waits = Array.from({ length: 200 }, () => new Backoff(1_000, 30_000).next());
  t.true(new Set(waits).size > 50);
  t.true(waits.every((w) => w >= 500 && w <= 1_000));
});

test("sleep ends early when its signal aborts", async (t) => {
  const ac = new AbortController();
  const started = Date.now();
  setTimeout(() => ac.abort(), 20);
  await sleep(10_000, ac.signal);
  t.true(Date.now() - started < 1_000);
});

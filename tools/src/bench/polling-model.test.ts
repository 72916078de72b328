import test from "ava";
import { percentile, simulatePolling } from "./polling-model.js";

test("a task waits for its trust's next poll, then for the tasks fetched before it", (t) => {
  const phase0 = () => 0;
  const { latenciesMs } = simulatePolling(
    [
      { trust: 1, createdAt: 1_000 },
      { trust: 1, createdAt: 2_000 },
      { trust: 2, createdAt: 1_000 },
      // Created just after the poll at 5000: waits for the poller's sleep after its batch (5020 + 5000).
      { trust: 1, createdAt: 5_001 },
    ],
    { intervalMs: 5_000, serviceMs: 10, random: phase0 },
  );
  t.deepEqual(latenciesMs, [4_010, 3_020, 4_010, 5_029]);
});

test("with random phases the median wait is about half the interval", (t) => {
  const tasks = Array.from({ length: 5_000 }, (_, i) => ({ trust: i % 100, createdAt: i * 7 }));
  const sorted = simulatePolling(tasks, { intervalMs: 5_000, serviceMs: 5 }).latenciesMs.sort((a, b) => a - b);
  const p50 = percentile(sorted, 50);
  t.true(p50 > 2_000 && p50 < 3_000, `p50 ${p50}`);
  t.true(percentile(sorted, 99) < 5_100);
});

test("percentiles use the nearest rank", (t) => {
  const xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  t.is(percentile(xs, 50), 5);
  t.is(percentile(xs, 99), 10);
  t.is(percentile(xs, 0), 1);
});

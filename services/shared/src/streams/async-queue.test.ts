import test from "ava";
import { AsyncQueue } from "./async-queue.js";

test("items pushed before and after the reader starts arrive in order", async (t) => {
  const q = new AsyncQueue<number>();
  q.push(1);
  const seen: number[] = [];
  const reading = (async () => {
    for await (const n of q) seen.push(n);
  })();
  q.push(2);
  await new Promise((r) => setImmediate(r));
  q.push(3);
  q.end();
  await reading;
  t.deepEqual(seen, [1, 2, 3]);
});

test("end lets the reader drain what is queued; pushes after end are refused", async (t) => {
  const q = new AsyncQueue<string>();
  q.push("a");
  q.end();
  t.false(q.push("b"));
  const seen: string[] = [];
  for await (const s of q) seen.push(s);
  t.deepEqual(seen, ["a"]);
});

test("fail makes a waiting reader throw the given error", async (t) => {
  const q = new AsyncQueue<number>();
  const reading = (async () => {
    for await (const _ of q) t.fail("no item expected");
  })();
  q.fail(new Error("stream cut"));
  await t.throwsAsync(reading, { message: "stream cut" });
  t.true(q.closed);
});

test("fail drops queued items so teardown is immediate", async (t) => {
  const q = new AsyncQueue<number>();
  q.push(1);
  q.push(2);
  q.fail(new Error("gone"));
  await t.throwsAsync(q.next(), { message: "gone" });
  t.is(q.size, 0);
});

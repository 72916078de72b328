import test from "ava";
import { KindSlots } from "./kind-slots.js";

const never = new AbortController().signal;

test("no more tasks of a kind run at once than its limit, and kinds do not block each other", async (t) => {
  const slots = new KindSlots((k) => (k === "echo" ? 2 : 1));
  const a = await slots.acquire("echo", never);
  await slots.acquire("echo", never);
  let thirdStarted = false;
  const third = slots.acquire("echo", never).then((r) => ((thirdStarted = true), r));
  await slots.acquire("cohort_query", never);
  await new Promise((r) => setImmediate(r));
  t.false(thirdStarted, "a third echo waits");
  t.is(slots.running("echo"), 2);
  t.is(slots.queued("echo"), 1);
  t.is(slots.running("cohort_query"), 1, "another kind runs meanwhile");
  a();
  a(); // releasing twice frees one slot only
  await third;
  t.true(thirdStarted);
  t.is(slots.running("echo"), 2);
});

test("waiters are served in arrival order", async (t) => {
  const slots = new KindSlots(() => 1);
  const first = await slots.acquire("echo", never);
  const order: number[] = [];
  const w1 = slots.acquire("echo", never).then((r) => (order.push(1), r));
  const w2 = slots.acquire("echo", never).then((r) => (order.push(2), r));
  first();
  (await w1)();
  (await w2)();
  t.deepEqual(order, [1, 2]);
  t.is(slots.running("echo"), 0);
});

test("a waiter whose task is cancelled leaves the queue without taking a slot", async (t) => {
  const slots = new KindSlots(() => 1);
  const held = await slots.acquire("echo", never);
  const ac = new AbortController();
  const waiting = slots.acquire("echo", ac.signal);
  ac.abort(new Error("cancelled"));
  await t.throwsAsync(waiting, { message: "cancelled" });
  t.is(slots.queued("echo"), 0);
  held();
  t.is(slots.running("echo"), 0);
});

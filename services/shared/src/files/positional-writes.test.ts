import test from "ava";
import { eventually } from "../testing/eventually.js";
import { PositionalWrites } from "./positional-writes.js";

/** A write target whose writes finish only when the test says so. */
function controlledTarget() {
  const calls: { pieces: string[]; at: number; finish: () => void; fail: (e: Error) => void }[] = [];
  const writeAt = (data: readonly Uint8Array[], at: number) =>
    new Promise<void>((resolve, reject) => calls.push({ pieces: data.map((d) => Buffer.from(d).toString()), at, finish: resolve, fail: reject }));
  return { calls, writeAt };
}

const bytes = (s: string) => [Buffer.from(s)];

test("bytes that arrive while a write is in flight go out together in the next one, in order", async (t) => {
  const { calls, writeAt } = controlledTarget();
  const writes = new PositionalWrites(writeAt, 100, 1024);
  await writes.add(bytes("ab"), 100, 2);
  await writes.add(bytes("cd"), 102, 2);
  await writes.add(bytes("ef"), 104, 2);
  t.is(calls.length, 1, "one write at a time");
  t.deepEqual(calls[0]!.pieces, ["ab"]);
  t.is(writes.written, 100, "nothing counts until its write finished");
  calls[0]!.finish();
  const drained = writes.drain();
  await eventually(() => calls.length, (n) => n === 2, { everyMs: 1, what: "the second write" });
  t.deepEqual(calls[1]!.pieces, ["cd", "ef"]);
  t.is(calls[1]!.at, 102);
  calls[1]!.finish();
  await drained;
  t.is(writes.written, 106);
});

test("adding waits while more than the bound is queued or being written", async (t) => {
  const { calls, writeAt } = controlledTarget();
  const writes = new PositionalWrites(writeAt, 0, 4);
  await writes.add(bytes("abc"), 0, 3);
  let added = false;
  const adding = writes.add(bytes("de"), 3, 2).then(() => (added = true));
  // Both writes' bytes are now queued or in flight; only the first write finishing can release them.
  await new Promise((r) => setImmediate(r));
  t.false(added, "5 bytes are over the bound of 4");
  calls[0]!.finish();
  await adding;
  t.true(added);
  t.is(writes.written, 3);
});

test("a failed write is thrown, and nothing after it counts as written", async (t) => {
  const { calls, writeAt } = controlledTarget();
  const writes = new PositionalWrites(writeAt, 0, 1024);
  await writes.add(bytes("ab"), 0, 2);
  calls[0]!.finish();
  await writes.drain();
  await writes.add(bytes("cd"), 2, 2);
  calls[1]!.fail(new Error("disk full"));
  await t.throwsAsync(writes.drain(), { message: "disk full" });
  await t.throwsAsync(writes.add(bytes("ef"), 4, 2), { message: "disk full" });
  t.is(writes.written, 2);
  await writes.settle();
});

test("bytes must follow the previous ones", async (t) => {
  const { writeAt } = controlledTarget();
  const writes = new PositionalWrites(writeAt, 10, 1024);
  await t.throwsAsync(writes.add(bytes("x"), 12, 1), { message: /does not follow/ });
});

import test from "ava";
import { planStarts } from "./scheduler.js";

const job = (id: string, trusts: string[], gpus: number) => ({ id, trust_ids: trusts, gpus_per_trust: gpus });

test("jobs start first come first served on free GPUs, each getting specific devices", (t) => {
  const plan = planStarts(
    [job("a", ["north", "south"], 1), job("b", ["north"], 1), job("c", ["north"], 1)],
    new Map([
      ["north", [0, 1]],
      ["south", [0]],
    ]),
    new Map(),
  );
  t.deepEqual([...plan.keys()], ["a", "b"]);
  t.deepEqual(Object.fromEntries(plan.get("a")!), { north: [0], south: [0] });
  t.deepEqual(Object.fromEntries(plan.get("b")!), { north: [1] });
});

test("GPUs held by running jobs are not handed out again", (t) => {
  const plan = planStarts([job("a", ["north"], 1)], new Map([["north", [0, 1]]]), new Map([["north", new Set([0])]]));
  t.deepEqual(Object.fromEntries(plan.get("a")!), { north: [1] });
  t.is(planStarts([job("a", ["north"], 2)], new Map([["north", [0, 1]]]), new Map([["north", new Set([0])]])).size, 0);
});

test("a waiting job reserves its trusts: a later job on them waits, one on other trusts goes ahead", (t) => {
  const plan = planStarts(
    [job("big", ["north"], 2), job("small-north", ["north"], 1), job("south", ["south"], 1)],
    new Map([
      ["north", [0, 1]],
      ["south", [0]],
    ]),
    new Map([["north", new Set([1])]]),
  );
  t.deepEqual([...plan.keys()], ["south"]);
});

test("CPU jobs need no GPUs and start at once", (t) => {
  const plan = planStarts([job("gpu", ["north"], 4), job("cpu", ["north"], 0)], new Map([["north", [0]]]), new Map());
  t.deepEqual([...plan.keys()], ["cpu"]);
  t.deepEqual(Object.fromEntries(plan.get("cpu")!), { north: [] });
});

import test from "ava";
import { MAX_REPORT_ITEMS, ReportBuffer, SeqClock } from "./reports.js";

test("sequence numbers start from the clock and always increase, even when the clock stands still or goes back", (t) => {
  let now = 1_700_000_000_000;
  const seq = new SeqClock(() => now);
  const a = seq.next();
  t.is(a, 1_700_000_000_000_000n);
  t.is(seq.next(), a + 1n);
  now -= 5_000;
  t.is(seq.next(), a + 2n);
  now += 10_000;
  t.is(seq.next(), 1_700_000_005_000_000n);
  // A restarted gateway (a new clock) starts above what the old one handed out in the past.
  t.true(new SeqClock(() => now + 1).next() > a + 2n);
});

test("live reports carry what is new; the result carries everything since the last result", (t) => {
  const r = new ReportBuffer(new SeqClock(), { logBytesPerRound: 1024 });
  t.is(r.takeLive(), undefined);
  r.metric({ label: "loss", value: 1, round: 1, xLabel: "", xValue: 0 });
  r.logLines(["epoch 1"]);
  const live1 = r.takeLive()!;
  t.is(live1.metrics.length, 1);
  t.deepEqual(live1.logs[0]!.lines, ["epoch 1"]);
  r.event({ kind: "checkpoint", round: 1, message: "saved", details: {} });
  const live2 = r.takeLive()!;
  t.is(live2.metrics.length, 0);
  t.is(live2.events.length, 1);
  const all = r.takeAll();
  t.is(all.metrics.length, 1);
  t.is(all.events.length, 1);
  t.is(all.logs.length, 1);
  const seqs = [...all.metrics, ...all.events, ...all.logs].map((i) => i.seq);
  t.is(new Set(seqs).size, 3);
  t.is(r.takeAll().metrics.length, 0);
});

test("log lines beyond a round's allowance stay at the trust and are counted", (t) => {
  const r = new ReportBuffer(new SeqClock(), { logBytesPerRound: 20 });
  r.logLines(["0123456789", "0123456789", "0123456789"]);
  const all = r.takeAll();
  const lines = all.logs.flatMap((l) => l.lines);
  t.is(lines[0], "0123456789");
  t.is(lines.length, 2);
  t.regex(lines[1]!, /2 log lines \(22 bytes\) stayed at the trust/);
  // The next round has its allowance again.
  r.logLines(["0123456789"]);
  t.deepEqual(r.takeAll().logs.flatMap((l) => l.lines), ["0123456789"]);
});

test("a flood of metrics is capped, and the result says how many were dropped", (t) => {
  const r = new ReportBuffer(new SeqClock(), { logBytesPerRound: 0 });
  for (let i = 0; i < MAX_REPORT_ITEMS + 10; i++) r.metric({ label: "x", value: i, round: 1, xLabel: "", xValue: 0 });
  const all = r.takeAll();
  t.is(all.metrics.length, MAX_REPORT_ITEMS);
  t.regex(all.events[0]!.message, /^10 metrics or events/);
});

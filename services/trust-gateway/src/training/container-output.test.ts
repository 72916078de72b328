import test from "ava";
import { MAX_LINE_CHARS, OutputLines } from "./container-output.js";

function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

test("stdout and stderr frames become lines, across chunk and frame boundaries", (t) => {
  const out = new OutputLines();
  const all = Buffer.concat([frame(1, "epoch 1\nep"), frame(2, "warning: x\r\n"), frame(1, "och 2\n"), frame(1, "no newline")]);
  const lines: string[] = [];
  for (let i = 0; i < all.length; i += 5) lines.push(...out.push(all.subarray(i, i + 5)));
  lines.push(...out.end());
  t.deepEqual(lines, ["epoch 1", "warning: x", "epoch 2", "no newline"]);
});

test("a very long line is cut", (t) => {
  const out = new OutputLines();
  const [line] = out.push(frame(1, "x".repeat(MAX_LINE_CHARS * 2) + "\n"));
  t.is(line!.length, MAX_LINE_CHARS + 1);
});

test("multi-byte characters split between frames survive", (t) => {
  const bytes = Buffer.from("é\n");
  const out = new OutputLines();
  const head = (n: number) => {
    const h = Buffer.alloc(8);
    h[0] = 1;
    h.writeUInt32BE(n, 4);
    return h;
  };
  const lines = [...out.push(Buffer.concat([head(1), bytes.subarray(0, 1)])), ...out.push(Buffer.concat([head(2), bytes.subarray(1)]))];
  t.deepEqual(lines, ["é"]);
});

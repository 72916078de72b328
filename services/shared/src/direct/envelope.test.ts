import { randomBytes } from "node:crypto";
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { EnvelopeReader, envelopeHeader, joinParts, type MessageParts } from "./envelope.js";

const frame = (m: Uint8Array) => Buffer.concat([envelopeHeader(m.length), m]);

/** Feeds `stream` cut at the given offsets and returns the messages, joined. */
function readAll(stream: Buffer, cuts: number[], max = 1 << 20): { messages: Buffer[]; reader: EnvelopeReader; partCounts: number[] } {
  const reader = new EnvelopeReader(max);
  const messages: Buffer[] = [];
  const partCounts: number[] = [];
  let from = 0;
  for (const at of [...cuts, stream.length]) {
    reader.push(stream.subarray(from, at), (parts: MessageParts) => {
      partCounts.push(parts.length);
      messages.push(Buffer.from(joinParts(parts)));
    });
    from = at;
  }
  return { messages, reader, partCounts };
}

test("messages come out whole and in order however the bytes are cut, including cuts inside the 5-byte header", (t) => {
  const sent = [randomBytes(1), randomBytes(0), randomBytes(70_000), randomBytes(5), randomBytes(16_384)];
  const stream = Buffer.concat(sent.map(frame));
  for (let trial = 0; trial < 200; trial++) {
    const cuts = [...new Set(Array.from({ length: 1 + (trial % 40) }, () => Math.floor(Math.random() * stream.length)))].sort((a, b) => a - b);
    const { messages, reader } = readAll(stream, cuts);
    t.deepEqual(messages, sent, `cuts ${cuts.join(",")}`);
    t.false(reader.midMessage);
  }
});

test("a message that arrives in one chunk is handed over without copying; one split over chunks keeps its pieces", (t) => {
  const big = randomBytes(100_000);
  const stream = frame(big);
  const whole = readAll(stream, []);
  t.deepEqual(whole.partCounts, [1]);
  const split = readAll(stream, [1000, 40_000, 80_000]);
  t.deepEqual(split.partCounts, [4]);
  t.deepEqual(split.messages[0], big);
});

test("a stream that stops inside a message says so", (t) => {
  const stream = frame(randomBytes(100));
  t.true(readAll(stream.subarray(0, 50), []).reader.midMessage);
  t.true(readAll(stream.subarray(0, 3), []).reader.midMessage);
});

test("an oversized message is ResourceExhausted and a compressed one is refused, before any body is read", (t) => {
  const tooBig = readAllError(envelopeHeader(2048), 1024);
  t.is(tooBig.code, Code.ResourceExhausted);
  t.regex(tooBig.rawMessage, /2048 is larger than the configured limit of 1024/);
  const compressed = Buffer.from([1, 0, 0, 0, 1, 7]);
  t.is(readAllError(compressed, 1024).code, Code.Internal);
});

function readAllError(stream: Buffer, max: number): ConnectError {
  try {
    readAll(stream, [], max);
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("expected the reader to refuse the stream");
}

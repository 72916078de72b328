import test from "ava";
import { boundaryOf, MultipartError, multipartParts } from "./multipart.js";

const BOUNDARY = "b0undary-42";

/** Parts whose bytes include CR, LF, dashes and near-boundaries, so a sloppy splitter would cut them. */
function sampleParts(): Buffer[] {
  const binary = Buffer.alloc(10_000);
  for (let i = 0; i < binary.length; i++) binary[i] = (i * 31 + 7) & 0xff;
  return [
    binary,
    Buffer.from(`--${BOUNDARY} not at a line start\r\n--b0undary-4 almost\r\n-${BOUNDARY}`),
    Buffer.alloc(0),
    Buffer.from("\r\n\r\n--\r\n"),
  ];
}

function multipartBody(parts: Buffer[], opts: { preamble?: string; epilogue?: string; headers?: string[] } = {}): Buffer {
  const out: Buffer[] = [];
  if (opts.preamble !== undefined) out.push(Buffer.from(opts.preamble + "\r\n"));
  parts.forEach((part, i) => {
    const headers = opts.headers?.[i] ?? "Content-Type: application/dicom\r\n";
    out.push(Buffer.from(`--${BOUNDARY}\r\n${headers}\r\n`), part, Buffer.from("\r\n"));
  });
  out.push(Buffer.from(`--${BOUNDARY}--`));
  if (opts.epilogue !== undefined) out.push(Buffer.from(opts.epilogue));
  return Buffer.concat(out);
}

async function* inChunks(body: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < body.length; i += size) yield new Uint8Array(body.subarray(i, i + size));
}

async function collect(body: AsyncIterable<Uint8Array>, boundary = BOUNDARY): Promise<Buffer[]> {
  const parts: Buffer[] = [];
  for await (const part of multipartParts(body, boundary)) parts.push(Buffer.from(part));
  return parts;
}

for (const size of [1, 7, 4096]) {
  test(`parts come out whole when the body arrives in chunks of ${size} bytes`, async (t) => {
    const parts = sampleParts();
    const body = multipartBody(parts, { preamble: "this is a preamble", epilogue: "\r\nand an epilogue\r\n" });
    t.deepEqual(await collect(inChunks(body, size)), parts);
  });
}

test("a part without headers and a boundary line with trailing spaces are read", async (t) => {
  const body = Buffer.concat([
    Buffer.from(`--${BOUNDARY}  \r\n\r\nfirst\r\n`),
    Buffer.from(`--${BOUNDARY}\r\nContent-Type: application/dicom\r\nContent-Length: 6\r\n\r\nsecond\r\n--${BOUNDARY}--\r\n`),
  ]);
  t.deepEqual(await collect(inChunks(body, 3)), [Buffer.from("first"), Buffer.from("second")]);
});

test("a body cut before the closing boundary is reported as truncated", async (t) => {
  const body = multipartBody(sampleParts());
  const cut = body.subarray(0, body.length - 200);
  const err = await t.throwsAsync(collect(inChunks(cut, 64)), { instanceOf: MultipartError });
  t.true(err.truncated);
});

test("a body without the announced boundary is malformed, not truncated", async (t) => {
  const err = await t.throwsAsync(collect(inChunks(Buffer.from("--other\r\n\r\nx\r\n--other--"), 5)), { instanceOf: MultipartError });
  t.false(err.truncated);
  t.regex(err.message, /no part with boundary/);
});

test("the boundary is read from a Content-Type, quoted or not", (t) => {
  t.is(boundaryOf('multipart/related; type="application/dicom"; boundary=abc-123'), "abc-123");
  t.is(boundaryOf('multipart/related; boundary="a b;c"; type="application/dicom"'), "a b;c");
  t.is(boundaryOf("multipart/related;BOUNDARY=xyz"), "xyz");
  t.is(boundaryOf("application/dicom"), undefined);
});

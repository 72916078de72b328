import test from "ava";
import { base32Decode, base32Encode, InvalidBase32Error } from "./base32.js";

// RFC 4648 §10 test vectors, without padding.
const vectors: [string, string][] = [
  ["", ""],
  ["f", "MY"],
  ["fo", "MZXQ"],
  ["foo", "MZXW6"],
  ["foob", "MZXW6YQ"],
  ["fooba", "MZXW6YTB"],
  ["foobar", "MZXW6YTBOI"],
];

test("encoding matches the RFC 4648 test vectors", (t) => {
  for (const [plain, encoded] of vectors) t.is(base32Encode(Buffer.from(plain)), encoded);
});

test("decoding matches the RFC 4648 test vectors, with or without padding and in any case", (t) => {
  for (const [plain, encoded] of vectors) {
    t.is(base32Decode(encoded).toString(), plain);
    t.is(base32Decode(encoded.toLowerCase() + "======").toString(), plain);
  }
  t.is(base32Decode("MZXW 6YTB OI").toString(), "foobar");
});

test("random bytes survive a round trip", (t) => {
  for (let n = 0; n < 40; n++) {
    const bytes = crypto.getRandomValues(new Uint8Array(n));
    t.deepEqual(new Uint8Array(base32Decode(base32Encode(bytes))), bytes);
  }
});

test("a character outside the alphabet is refused", (t) => {
  t.throws(() => base32Decode("MZXW1"), { instanceOf: InvalidBase32Error, message: /"1"/ });
});

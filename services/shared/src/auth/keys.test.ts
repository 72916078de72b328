import test from "ava";
import { issueKey, parseKey, secretMatches, constantTimeEqual, bearerToken } from "./keys.js";

test("an issued key parses back to its id and its secret matches the stored hash", (t) => {
  const k = issueKey("trust");
  const parsed = parseKey(k.key, "trust");
  t.truthy(parsed);
  t.is(parsed!.keyId, k.keyId);
  t.true(secretMatches(parsed!.secret, k.secretHash));
  t.false(secretMatches(parsed!.secret.replace(/.$/, (c) => (c === "A" ? "B" : "A")), k.secretHash));
});

test("a key of another kind or a malformed key is not parsed", (t) => {
  const k = issueKey("trust");
  t.is(parseKey(k.key, "user"), undefined);
  t.is(parseKey("flip_trust_nothex_abc", "trust"), undefined);
  t.is(parseKey("", "trust"), undefined);
});

test("two issued keys never share an id or a secret", (t) => {
  const a = issueKey("trust");
  const b = issueKey("trust");
  t.not(a.keyId, b.keyId);
  t.not(a.secretHash, b.secretHash);
});

test("constant-time equality compares whole strings", (t) => {
  t.true(constantTimeEqual("admin-token", "admin-token"));
  t.false(constantTimeEqual("admin-token", "admin-token2"));
  t.false(constantTimeEqual("", "x"));
});

test("a bearer token is read from the Authorization header", (t) => {
  t.is(bearerToken(new Headers({ authorization: "Bearer abc.def" })), "abc.def");
  t.is(bearerToken(new Headers({ authorization: "Basic abc" })), undefined);
  t.is(bearerToken(new Headers()), undefined);
});

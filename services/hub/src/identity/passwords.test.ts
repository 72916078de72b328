import test from "ava";
import { InvalidInputError } from "../domain/errors.js";
import { checkPasswordPolicy, DEFAULT_SCRYPT_PARAMS, hashPassword, verifyAgainstNothing, verifyPassword } from "./passwords.js";

const fast = { log2N: 10, r: 8, p: 1 };

test("a hash records scrypt and its parameters, and only the right password matches it", async (t) => {
  const hash = await hashPassword("correct horse battery", DEFAULT_SCRYPT_PARAMS);
  t.regex(hash, /^scrypt\$15\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
  t.true(await verifyPassword("correct horse battery", hash));
  t.false(await verifyPassword("correct horse batterz", hash));
});

test("two hashes of the same password differ (random salt)", async (t) => {
  t.not(await hashPassword("same password!", fast), await hashPassword("same password!", fast));
});

test("a hash made with other parameters still verifies (parameters are read from the hash)", async (t) => {
  const hash = await hashPassword("older parameters", fast);
  t.true(await verifyPassword("older parameters", hash));
});

test("a stored value that is not our hash format never matches", async (t) => {
  t.false(await verifyPassword("anything", ""));
  t.false(await verifyPassword("anything", "$2b$10$abcdefghijklmnopqrstuv"));
  t.false(await verifyAgainstNothing("anything"));
});

test("the password policy accepts a long passphrase", (t) => {
  t.notThrows(() => checkPasswordPolicy("violet staple orbit", "ada@example.org"));
});

test("the password policy refuses short, repetitive, common, sequential and email-based passwords, naming the field", (t) => {
  const refused: [string, RegExp][] = [
    ["short1!", /at least 12 characters/],
    ["x".repeat(257), /at most 256/],
    ["aaaaaaaaaaaaaaaa", /too few different characters/],
    ["abababab12abab", /too few different characters/],
    ["Password1234", /too common/],
    ["abcdefghijklmn", /too common/],
    ["my name is lovelace!", /email/],
  ];
  for (const [pw, message] of refused) {
    const e = t.throws(() => checkPasswordPolicy(pw, "lovelace@example.org"), { instanceOf: InvalidInputError });
    t.is(e?.field, "password");
    t.regex(e?.message ?? "", message, pw);
  }
});

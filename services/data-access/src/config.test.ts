import test from "ava";
import { ConfigError } from "@flip/shared/config/settings.js";
import { readDataAccessConfig } from "./config.js";

const base = { FLIP_DATA_ACCESS_DATABASE_URL: "postgres://owner:pw@127.0.0.1:5432/omop", FLIP_TRUST_INTERNAL_KEY: "k".repeat(32) };

test("defaults: port 7781 on loopback, threshold 10, 30 s statement timeout, permit-all policy", (t) => {
  const c = readDataAccessConfig(base);
  t.is(c.host, "127.0.0.1");
  t.is(c.port, 7781);
  t.is(c.threshold, 10);
  t.is(c.statementTimeoutMs, 30_000);
  t.is(c.readerUrl, undefined);
  t.deepEqual(c.policy.rules, []);
});

test("the database URL and the internal key are required", (t) => {
  t.throws(() => readDataAccessConfig({ ...base, FLIP_DATA_ACCESS_DATABASE_URL: undefined }), { instanceOf: ConfigError, message: /FLIP_DATA_ACCESS_DATABASE_URL/ });
  t.throws(() => readDataAccessConfig({ ...base, FLIP_TRUST_INTERNAL_KEY: "short" }), { instanceOf: ConfigError, message: /FLIP_TRUST_INTERNAL_KEY/ });
});

test("a threshold below 3 is refused, since suppression would then hide nothing", (t) => {
  t.throws(() => readDataAccessConfig({ ...base, FLIP_DATA_ACCESS_THRESHOLD: "2" }), { instanceOf: ConfigError, message: /FLIP_DATA_ACCESS_THRESHOLD/ });
  t.is(readDataAccessConfig({ ...base, FLIP_DATA_ACCESS_THRESHOLD: "25" }).threshold, 25);
});

test("the internal key never appears in a configuration error", (t) => {
  const e = t.throws(() => readDataAccessConfig({ ...base, FLIP_TRUST_INTERNAL_KEY: "secret-short" }), { instanceOf: ConfigError });
  t.false(e?.message.includes("secret-short"));
});

import test from "ava";
import { ConfigError } from "@flip/shared/config/settings.js";
import { readImagingConfig } from "./config.js";

const base = {
  FLIP_IMAGING_DATABASE_URL: "postgres://imaging:pw@127.0.0.1:5432/imaging",
  FLIP_TRUST_INTERNAL_KEY: "0123456789abcdef0123",
  FLIP_DATA_ACCESS_URL: "http://127.0.0.1:7781",
  FLIP_IMAGING_PACS: '{"protocol":"dicomweb","url":"http://pacs:8042/dicom-web","username":"flip","password":"s3cret-pacs"}',
  FLIP_IMAGING_STORE_URL: "http://127.0.0.1:8043/",
  FLIP_IMAGING_STORE_PASSWORD: "s3cret-store",
};

test("the defaults a trust starts with", (t) => {
  const c = readImagingConfig(base);
  t.is(c.port, 7782);
  t.is(c.store.url, "http://127.0.0.1:8043");
  t.deepEqual({ ...c.pacing, window: c.pacing.window?.text }, { concurrency: 2, storeConcurrency: 4, window: undefined, maxAttempts: 5, retryBaseMs: 10_000 });
  t.true(c.pseudonymKeyFile.endsWith("pseudonym.key"));
  t.is(c.pacs.protocol, "dicomweb");
});

test("each missing or bad setting is named, and no secret is shown", (t) => {
  for (const [name, env] of [
    ["FLIP_IMAGING_DATABASE_URL", { ...base, FLIP_IMAGING_DATABASE_URL: undefined }],
    ["FLIP_DATA_ACCESS_URL", { ...base, FLIP_DATA_ACCESS_URL: undefined }],
    ["FLIP_IMAGING_PACS", { ...base, FLIP_IMAGING_PACS: undefined }],
    ["FLIP_IMAGING_PACS", { ...base, FLIP_IMAGING_PACS: '{"protocol":"dicomweb","password":"s3cret-pacs"' }],
    ["FLIP_IMAGING_STORE_URL", { ...base, FLIP_IMAGING_STORE_URL: undefined }],
    ["FLIP_IMAGING_WINDOW", { ...base, FLIP_IMAGING_WINDOW: "nights" }],
    ["FLIP_TRUST_INTERNAL_KEY", { ...base, FLIP_TRUST_INTERNAL_KEY: "short" }],
  ] as const) {
    const e = t.throws(() => readImagingConfig(env), { instanceOf: ConfigError }, name);
    t.regex(e!.message, new RegExp(name), name);
    t.false(/s3cret|short/.test(e!.message), `${name}: no secret in the message`);
  }
});

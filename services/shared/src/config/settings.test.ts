import { mkdtempSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { ConfigError, SettingsReader } from "./settings.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "flip-settings-"));
function secretFile(name: string, content: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

test("a setting given as NAME_FILE is read from that file, without its trailing newline", (t) => {
  const s = new SettingsReader({
    DATABASE_URL_FILE: secretFile("db-url", "postgres://flip:s3cret@db:5432/flip\n"),
    FLIP_TRUST_KEY_FILE: secretFile("trust-key", "flip_trust_key"),
    FLIP_PORT_FILE: secretFile("port", "7770\n"),
  });
  t.is(s.url("DATABASE_URL", undefined, ["postgres"]), "postgres://flip:s3cret@db:5432/flip");
  t.is(s.optionalString("FLIP_TRUST_KEY"), "flip_trust_key");
  t.is(s.int("FLIP_PORT", 0, 1, 65535), 7770);
});

test("setting both NAME and NAME_FILE is an error that names both", (t) => {
  const s = new SettingsReader({ FLIP_ADMIN_TOKEN: "from-the-environment", FLIP_ADMIN_TOKEN_FILE: secretFile("token", "from-a-file") });
  const e = t.throws(() => s.optionalString("FLIP_ADMIN_TOKEN"), { instanceOf: ConfigError });
  t.is(e.setting, "FLIP_ADMIN_TOKEN_FILE");
  t.regex(e.message, /either FLIP_ADMIN_TOKEN or FLIP_ADMIN_TOKEN_FILE, not both/);
});

test("a missing or empty file stops the process naming the _FILE setting and the path", (t) => {
  const missing = path.join(dir, "no-such-file");
  const gone = t.throws(() => new SettingsReader({ FLIP_TRUST_KEY_FILE: missing }).optionalString("FLIP_TRUST_KEY"), { instanceOf: ConfigError });
  t.is(gone.setting, "FLIP_TRUST_KEY_FILE");
  t.regex(gone.message, /no-such-file.*this process \(uid \d+\) can read \(ENOENT\)/);
  const empty = t.throws(() => new SettingsReader({ FLIP_TRUST_KEY_FILE: secretFile("empty", "\n") }).optionalString("FLIP_TRUST_KEY"), { instanceOf: ConfigError });
  t.regex(empty.message, /it is empty/);
});

test("a bad value from a file is reported without echoing the file's contents", (t) => {
  const file = secretFile("bad-url", "not a url with p4ssw0rd");
  const e = t.throws(() => new SettingsReader({ DATABASE_URL_FILE: file }).url("DATABASE_URL", undefined, ["postgres"]), { instanceOf: ConfigError });
  t.is(e.setting, "DATABASE_URL_FILE");
  t.false(e.message.includes("p4ssw0rd"));
  t.true(e.message.includes(file));
});

test("a setting that already names a file has no second level, and the environment alone still works", (t) => {
  const s = new SettingsReader({ FLIP_SECRETS_KEY_FILE: "/etc/flip/secrets.key", FLIP_SECRETS_KEY_FILE_FILE: "/elsewhere", FLIP_LOG_LEVEL: "debug" });
  t.is(s.optionalString("FLIP_SECRETS_KEY_FILE"), "/etc/flip/secrets.key");
  t.is(s.oneOf("FLIP_LOG_LEVEL", ["info", "debug"], "info"), "debug");
  t.is(s.string("FLIP_UNSET", "fallback"), "fallback");
});

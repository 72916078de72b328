import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { pino } from "pino";
import { ConfigError } from "@flip/shared/config/settings.js";
import { createPacsClient, parsePacsConfig } from "./pacs-config.js";

const SETTING = "FLIP_IMAGING_PACS";
const dir = mkdtempSync(path.join(os.tmpdir(), "flip-pacs-config-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function secretFile(name: string, content: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

test("a DICOMweb PACS with a password file reads the password from it", (t) => {
  const passwordFile = secretFile("pacs-password", "s3cret\n");
  const config = parsePacsConfig(JSON.stringify({ protocol: "dicomweb", url: "http://pacs:8042/dicom-web", username: "flip", passwordFile }), SETTING);
  t.deepEqual(config, { protocol: "dicomweb", url: "http://pacs:8042/dicom-web", username: "flip", password: "s3cret", token: undefined, timeoutMs: undefined });
  t.is(createPacsClient(config, pino({ level: "silent" })).description, "dicomweb http://pacs:8042/dicom-web");
});

test("a DICOMweb PACS may use a bearer token instead", (t) => {
  const config = parsePacsConfig('{"protocol":"dicomweb","url":"https://pacs/dicomweb","token":"abc","timeoutSeconds":90}', SETTING);
  t.like(config, { protocol: "dicomweb", token: "abc", timeoutMs: 90_000 });
});

test("a DIMSE PACS retrieves with C-GET unless told to move, and a move needs a store port", (t) => {
  const get = parsePacsConfig('{"protocol":"dimse","host":"pacs","port":4242,"calledAet":"PACS","callingAet":"FLIPIMG"}', SETTING);
  t.like(get, { protocol: "dimse", retrieve: "get", storePort: undefined });
  t.is(createPacsClient(get, pino({ level: "silent" })).description, "dimse PACS@pacs:4242 (C-GET)");
  const move = parsePacsConfig('{"protocol":"dimse","host":"pacs","port":4242,"calledAet":"PACS","callingAet":"FLIPIMG","retrieve":"move","storePort":11113}', SETTING);
  t.like(move, { retrieve: "move", storePort: 11113 });
  const err = t.throws(() => parsePacsConfig('{"protocol":"dimse","host":"pacs","port":4242,"calledAet":"PACS","callingAet":"FLIPIMG","retrieve":"move"}', SETTING), { instanceOf: ConfigError });
  t.regex(err.message, /storePort/);
});

test("a wrong setting names the setting, says what is expected with an example, and hides secrets", (t) => {
  const cases = [
    '{"protocol":"dicomweb","url":"http://pacs/dicom-web","username":"flip","password":"hunter2","passwd":"x"}',
    '{"protocol":"dicomweb","url":"ftp://pacs","username":"flip","password":"hunter2"}',
    '{"protocol":"dicomweb","url":"http://pacs","password":"hunter2"}',
    '{"protocol":"dicomweb","url":"http://pacs","token":"hunter2","username":"flip","password":"x"}',
    '{"protocol":"dimse","host":"pacs","port":99999,"calledAet":"PACS","callingAet":"FLIPIMG"}',
    '{"protocol":"dimse","host":"pacs","port":104,"calledAet":"AN AET FAR TOO LONG","callingAet":"FLIPIMG"}',
    '{"protocol":"hl7"}',
    '{"protocol":"dicomweb","password":"hunter2",}',
    "[]",
  ];
  for (const raw of cases) {
    const err = t.throws(() => parsePacsConfig(raw, SETTING), { instanceOf: ConfigError }, raw);
    t.true(err.message.startsWith(`${SETTING}=`), err.message);
    t.regex(err.message, /e\.g\. \{"protocol":"dicomweb"/);
    t.notRegex(err.message, /hunter2/);
  }
});

test("a password file that cannot be read is named in the error", (t) => {
  const missing = path.join(dir, "nowhere");
  const err = t.throws(() => parsePacsConfig(JSON.stringify({ protocol: "dicomweb", url: "http://pacs", username: "flip", passwordFile: missing }), "FLIP_IMAGING_PACS_FILE"), { instanceOf: ConfigError });
  t.regex(err.message, /^FLIP_IMAGING_PACS_FILE=.*nowhere.*readable file/);
});

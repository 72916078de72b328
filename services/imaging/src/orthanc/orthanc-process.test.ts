import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { syntheticStudy } from "../testing/synthetic-study.js";
import { startOrthanc, type RunningOrthanc } from "./orthanc-process.js";

const root = mkdtempSync(path.join(os.tmpdir(), "flip-orthanc-"));
const running: RunningOrthanc[] = [];

test.after.always(async () => {
  await Promise.all(running.map((o) => o.stop()));
  rmSync(root, { recursive: true, force: true });
});

async function get(o: RunningOrthanc, p: string, auth = o.authHeader): Promise<Response> {
  return await fetch(o.url + p, { headers: { authorization: auth } });
}

test("an Orthanc starts on free loopback ports, with its own password, and answers only with it", async (t) => {
  const dir = path.join(root, "a");
  const o = await startOrthanc({ dir, name: "store", dimse: true });
  running.push(o);
  t.regex(o.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.is(o.dicomWebUrl, `${o.url}/dicom-web`);
  t.is(o.aet, "STORE");
  t.true(Number.isInteger(o.dicomPort));
  const system = (await (await get(o, "/system")).json()) as { Name: string; DicomAet: string; DicomPort: number };
  t.like(system, { Name: "store", DicomAet: "STORE", DicomPort: o.dicomPort });
  t.is((await get(o, "/system", "Basic " + Buffer.from("flip:wrong").toString("base64"))).status, 401);
  t.is(readFileSync(path.join(dir, "orthanc-password"), "utf8").trim(), o.password);
  t.is(statSync(path.join(dir, "orthanc-password")).mode & 0o777, 0o600);
  t.is(statSync(path.join(dir, "orthanc.json")).mode & 0o777, 0o600);
});

test("a restart keeps the data, the password and the ports", async (t) => {
  const o = await startOrthanc({ dir: path.join(root, "b"), name: "kept", dicomweb: false });
  running.push(o);
  const [file] = syntheticStudy({ accessionNumber: "R1", patientId: "P", patientName: "A^B", slices: 1 });
  const stored = await fetch(`${o.url}/instances`, { method: "POST", headers: { authorization: o.authHeader }, body: file });
  t.is(stored.status, 200);
  const again = await o.restart();
  running.push(again);
  t.is(again.url, o.url);
  t.is(again.password, o.password);
  t.deepEqual(await (await get(again, "/instances")).json(), [((await stored.json()) as { ID: string }).ID]);
  // The first process is gone: stopping it again is harmless.
  await o.stop();
});

test("stop ends the process: its port no longer answers", async (t) => {
  const o = await startOrthanc({ dir: path.join(root, "c"), name: "brief", dicomweb: false });
  await o.stop();
  await t.throwsAsync(get(o, "/system"), { instanceOf: TypeError });
});

test("an AET that DICOM does not allow is refused with what it allows; a long name is cut to an AET", async (t) => {
  await t.throwsAsync(startOrthanc({ dir: path.join(root, "d"), name: "pacs", aet: "lower case" }), { message: /up to 16 characters A-Z, 0-9, _ or -/ });
  const o = await startOrthanc({ dir: path.join(root, "e"), name: "north-general research", dicomweb: false });
  running.push(o);
  t.is(o.aet, "NORTH-GENERAL_RE");
});

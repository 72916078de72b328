import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import dcmjs from "dcmjs";
import { startPacs, type PacsFixture } from "../testing/orthanc-fixture.js";
import { syntheticStudy } from "../testing/synthetic-study.js";
import { dicomWebPacs } from "./dicomweb.js";
import { PacsRequestError, PacsUnavailableError, type PacsClient } from "./pacs.js";

const root = mkdtempSync(path.join(os.tmpdir(), "flip-dicomweb-"));
let pacs: PacsFixture;
let client: PacsClient;

const upper = { accessionNumber: "ACC1", patientId: "P1", patientName: "DOE^JANE", slices: 8 };
const lower = { accessionNumber: "acc1", patientId: "P2", patientName: "ROE^JOHN", slices: 4, seed: 1 };
const twinA = { accessionNumber: "TWIN7", patientId: "P3", patientName: "A^B", slices: 2, seed: 2 };
const twinB = { accessionNumber: "TWIN7", patientId: "P4", patientName: "C^D", slices: 3, series: 2, seed: 3 };

test.before(async () => {
  pacs = await startPacs({ dir: path.join(root, "pacs"), studies: [upper, lower, twinA, twinB] });
  client = dicomWebPacs({ url: pacs.orthanc.dicomWebUrl, auth: { username: pacs.orthanc.username, password: pacs.orthanc.password } });
});

test.after.always(async () => {
  await client?.close();
  await pacs?.orthanc.stop();
  rmSync(root, { recursive: true, force: true });
});

function sopInstanceUid(part10: Uint8Array): string {
  const copy = new Uint8Array(part10).buffer;
  return String(dcmjs.data.DicomMessage.readFile(copy).dict["00080018"]!.Value![0]);
}

test("an accession number matches exactly, case included", async (t) => {
  const found = await client.findByAccession("acc1");
  t.is(found.length, 1);
  t.like(found[0], { accessionNumber: "acc1", modality: "CT", seriesCount: 1, instanceCount: 4 });
  const [upperStudy] = await client.findByAccession("ACC1");
  t.like(upperStudy, { accessionNumber: "ACC1", instanceCount: 8 });
  t.not(upperStudy!.studyInstanceUid, found[0]!.studyInstanceUid);
});

test("an unknown accession number finds nothing", async (t) => {
  t.deepEqual(await client.findByAccession("NOPE-404"), []);
  t.deepEqual(await client.findByAccession("ACC*"), []);
});

test("two studies with one accession number are both returned", async (t) => {
  const found = await client.findByAccession("TWIN7");
  t.is(found.length, 2);
  t.deepEqual(found.map((s) => s.instanceCount).sort(), [2, 6]);
  t.deepEqual(found.map((s) => s.seriesCount).sort(), [1, 2]);
});

test("a retrieve hands over every instance of the study as a Part-10 file", async (t) => {
  const [study] = await client.findByAccession("ACC1");
  const expected = syntheticStudy(upper).map(sopInstanceUid).sort();
  const received: string[] = [];
  const result = await client.retrieveStudy(study!.studyInstanceUid, async (part10) => {
    received.push(sopInstanceUid(part10));
  });
  t.deepEqual(received.sort(), expected);
  t.is(result.instances, expected.length);
  t.true(result.bytes > 8 * 128 * 128 * 2);
});

test("a retrieve stops with the error of the instance handler", async (t) => {
  const [study] = await client.findByAccession("ACC1");
  let calls = 0;
  const err = await t.throwsAsync(
    client.retrieveStudy(study!.studyInstanceUid, async () => {
      calls++;
      throw new Error("research store is full");
    }),
  );
  t.is(err.message, "research store is full");
  t.is(calls, 1);
});

test("a study the PACS does not have is a request error", async (t) => {
  await t.throwsAsync(client.retrieveStudy("1.2.3.4.5.6.7", async () => undefined), { instanceOf: PacsRequestError, message: /not found/ });
  await t.throwsAsync(client.retrieveStudy("1.2.3/../../system", async () => undefined), { instanceOf: PacsRequestError });
});

test("wrong credentials are a request error that says to check them, without the password", async (t) => {
  const wrong = dicomWebPacs({ url: pacs.orthanc.dicomWebUrl, auth: { username: "flip", password: "not-the-password" } });
  const err = await t.throwsAsync(wrong.findByAccession("ACC1"), { instanceOf: PacsRequestError });
  t.regex(err.message, /HTTP 401.*check the PACS username and password/);
  t.notRegex(err.message, /not-the-password/);
});

test("a PACS that is killed is unavailable, not a hang", async (t) => {
  const gone = await startPacs({ dir: path.join(root, "gone"), studies: [{ ...upper, slices: 2 }] });
  const c = dicomWebPacs({ url: gone.orthanc.dicomWebUrl, auth: { username: gone.orthanc.username, password: gone.orthanc.password }, requestTimeoutMs: 5_000 });
  const [study] = await c.findByAccession("ACC1");
  await gone.orthanc.kill();
  const find = await t.throwsAsync(c.findByAccession("ACC1"), { instanceOf: PacsUnavailableError });
  t.true(find.message.startsWith(`dicomweb ${gone.orthanc.dicomWebUrl}`), find.message);
  t.regex(find.message, /ECONNREFUSED/);
  await t.throwsAsync(c.retrieveStudy(study!.studyInstanceUid, async () => undefined), { instanceOf: PacsUnavailableError });
});

test("a retrieve the caller aborts rejects with the caller's reason", async (t) => {
  const [study] = await client.findByAccession("ACC1");
  const controller = new AbortController();
  const reason = new Error("import cancelled");
  const err = await t.throwsAsync(
    client.retrieveStudy(study!.studyInstanceUid, async () => controller.abort(reason), controller.signal),
  );
  t.is(err, reason);
});

import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import dcmjs from "dcmjs";
import { freePort } from "../orthanc/orthanc-process.js";
import { startPacs, type PacsFixture } from "../testing/orthanc-fixture.js";
import { syntheticStudy, type SyntheticStudyOptions } from "../testing/synthetic-study.js";
import { dimsePacs } from "./dimse.js";
import { PacsRequestError, PacsUnavailableError, type PacsClient } from "./pacs.js";

const root = mkdtempSync(path.join(os.tmpdir(), "flip-dimse-"));
let pacs: PacsFixture;
let storePort: number;
const clients: PacsClient[] = [];
// One client per retrieve mode: a C-MOVE client owns the store port.
let getClient: PacsClient;
let moveClient: PacsClient;

const full: SyntheticStudyOptions = { accessionNumber: "ACC32", patientId: "P1", patientName: "DOE^JANE", slices: 32 };
const upper: SyntheticStudyOptions = { accessionNumber: "ACC1", patientId: "P2", patientName: "ROE^JOHN", slices: 3, seed: 1 };
const lower: SyntheticStudyOptions = { accessionNumber: "acc1", patientId: "P3", patientName: "POE^JO", slices: 2, seed: 2, modality: "MR" };
const twinA: SyntheticStudyOptions = { accessionNumber: "TWIN7", patientId: "P4", patientName: "A^B", slices: 2, seed: 3 };
const twinB: SyntheticStudyOptions = { accessionNumber: "TWIN7", patientId: "P5", patientName: "C^D", slices: 1, series: 2, seed: 4 };

test.before(async () => {
  storePort = await freePort();
  pacs = await startPacs({
    dir: path.join(root, "pacs"),
    dimse: true,
    modalities: { flip: { aet: "FLIPIMG", host: "127.0.0.1", port: storePort } },
    studies: [full, upper, lower, twinA, twinB],
  });
  getClient = client("get");
  moveClient = client("move");
});

test.after.always(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await pacs?.orthanc.stop();
  rmSync(root, { recursive: true, force: true });
});

function client(retrieve: "get" | "move", overrides: Partial<Parameters<typeof dimsePacs>[0]> = {}): PacsClient {
  const c = dimsePacs({
    host: pacs.orthanc.dicomHost,
    port: pacs.orthanc.dicomPort!,
    calledAet: pacs.orthanc.aet,
    callingAet: "FLIPIMG",
    retrieve,
    storePort: retrieve === "move" ? storePort : undefined,
    ...overrides,
  });
  clients.push(c);
  return c;
}


function sopInstanceUid(part10: Uint8Array): string {
  return String(dcmjs.data.DicomMessage.readFile(new Uint8Array(part10).buffer).dict["00080018"]!.Value![0]);
}

/** The data set after the file meta group: DIMSE carries it byte for byte. */
function dataSet(part10: Uint8Array): Buffer {
  const b = Buffer.from(part10);
  const metaLength = b.readUInt32LE(132 + 8);
  return b.subarray(132 + 12 + metaLength);
}

test("C-FIND matches an accession number exactly, case included", async (t) => {
  const [found, none, twins] = await Promise.all([getClient.findByAccession("acc1"), getClient.findByAccession("NOPE"), getClient.findByAccession("TWIN7")]);
  t.is(found.length, 1);
  t.like(found[0], { accessionNumber: "acc1", modality: "MR", seriesCount: 1, instanceCount: 2 });
  t.deepEqual(none, []);
  t.deepEqual(twins.map((s) => s.instanceCount).sort(), [2, 2]);
  t.deepEqual(twins.map((s) => s.seriesCount).sort(), [1, 2]);
  t.deepEqual(await getClient.findByAccession("acc*"), []);
});

for (const mode of ["get", "move"] as const) {
  const name = mode === "get" ? "C-GET" : "C-MOVE";

  // Serial (ava runs these first, one at a time) so that the timing is not shared with other tests.
  test.serial(`${name} hands over all 32 instances of a study as the Part-10 files stored, well under a second`, async (t) => {
    const c = mode === "get" ? getClient : moveClient;
    const [study] = await c.findByAccession("ACC32");
    const stored = new Map(syntheticStudy(full).map((f) => [sopInstanceUid(f), dataSet(f)]));
    const received = new Map<string, Buffer>();
    const started = performance.now();
    const result = await c.retrieveStudy(study!.studyInstanceUid, async (part10) => {
      received.set(sopInstanceUid(part10), dataSet(part10));
    });
    const ms = performance.now() - started;
    t.log(`${name} of 32 instances: ${ms.toFixed(0)} ms`);
    t.is(result.instances, 32);
    t.is(received.size, 32);
    for (const [uid, bytes] of stored) t.true(received.get(uid)?.equals(bytes), `instance ${uid} arrived unchanged`);
    // Nagle's algorithm on either side costs about 40-100 ms per instance: seconds for 32.
    t.true(ms < 1_000, `${ms} ms`);
  });

  test(`${name} stops with the error of the instance handler, and the PACS still serves the next retrieve`, async (t) => {
    const c = mode === "get" ? getClient : moveClient;
    const [study] = await c.findByAccession("ACC1");
    const err = await t.throwsAsync(
      c.retrieveStudy(study!.studyInstanceUid, async () => {
        throw new Error("research store is full");
      }),
    );
    t.is(err.message, "research store is full");
    const again = await c.retrieveStudy(study!.studyInstanceUid, async () => undefined);
    t.is(again.instances, 3);
  });

  test(`${name} that the caller aborts rejects with the caller's reason`, async (t) => {
    const c = mode === "get" ? getClient : moveClient;
    const [study] = await c.findByAccession("ACC32");
    const controller = new AbortController();
    const reason = new Error("import cancelled");
    let calls = 0;
    const err = await t.throwsAsync(
      c.retrieveStudy(
        study!.studyInstanceUid,
        async () => {
          if (++calls === 2) controller.abort(reason);
        },
        controller.signal,
      ),
    );
    t.is(err, reason);
    t.true(calls < 32);
  });

  test(`${name} of a study the PACS does not have is a request error`, async (t) => {
    const c = mode === "get" ? getClient : moveClient;
    await t.throwsAsync(c.retrieveStudy("1.2.3.4.5.6.7", async () => undefined), { instanceOf: PacsRequestError });
  });
}

test("C-MOVEs of two studies at once each receive their own instances", async (t) => {
  const [[a], [b]] = await Promise.all([moveClient.findByAccession("ACC1"), moveClient.findByAccession("acc1")]);
  const seen = { a: new Set<string>(), b: new Set<string>() };
  await Promise.all([
    moveClient.retrieveStudy(a!.studyInstanceUid, async (f) => void seen.a.add(sopInstanceUid(f))),
    moveClient.retrieveStudy(b!.studyInstanceUid, async (f) => void seen.b.add(sopInstanceUid(f))),
  ]);
  t.deepEqual([...seen.a].sort(), syntheticStudy(upper).map(sopInstanceUid).sort());
  t.deepEqual([...seen.b].sort(), syntheticStudy(lower).map(sopInstanceUid).sort());
});

test("a C-MOVE to an AET the PACS does not know fails and says what to configure", async (t) => {
  const stranger = client("move", { callingAet: "STRANGER", storePort: await freePort() });
  const [study] = await stranger.findByAccession("ACC1");
  const err = await t.throwsAsync(stranger.retrieveStudy(study!.studyInstanceUid, async () => undefined));
  t.true(err instanceof PacsRequestError || err instanceof PacsUnavailableError, String(err));
  t.regex(err.message, /STRANGER/);
});

test("a PACS that is killed is unavailable, not a hang", async (t) => {
  const gone = await startPacs({ dir: path.join(root, "gone"), dimse: true, studies: [{ ...upper, slices: 1 }] });
  const c = client("get", { port: gone.orthanc.dicomPort!, calledAet: gone.orthanc.aet, timeoutMs: 5_000 });
  const [study] = await c.findByAccession("ACC1");
  await gone.orthanc.kill();
  const find = await t.throwsAsync(c.findByAccession("ACC1"), { instanceOf: PacsUnavailableError });
  t.true(find.message.startsWith(`dimse PACS@127.0.0.1:${gone.orthanc.dicomPort} (C-GET)`), find.message);
  t.regex(find.message, /ECONNREFUSED/);
  await t.throwsAsync(c.retrieveStudy(study!.studyInstanceUid, async () => undefined), { instanceOf: PacsUnavailableError });
});

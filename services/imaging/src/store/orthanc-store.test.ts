import { mkdtempSync, rmSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { startOrthanc, type RunningOrthanc } from "../orthanc/orthanc-process.js";
import { syntheticStudy } from "../testing/synthetic-study.js";
import { orthancResearchStore } from "./orthanc-store.js";
import { ResearchStoreNotFoundError, ResearchStoreRequestError, ResearchStoreUnavailableError, type ResearchStore } from "./research-store.js";

const root = mkdtempSync(path.join(os.tmpdir(), "flip-store-"));
let orthanc: RunningOrthanc;
let store: ResearchStore;

test.before(async () => {
  orthanc = await startOrthanc({ dir: path.join(root, "store"), name: "research", dicomweb: false, fastStorage: true });
  store = orthancResearchStore(orthanc);
});

test.after.always(async () => {
  await orthanc?.stop();
  rmSync(root, { recursive: true, force: true });
});

async function bytesOf(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

test("storing the same file twice keeps one copy", async (t) => {
  const [file] = syntheticStudy({ accessionNumber: "TWICE", patientId: "P1", patientName: "A^B", slices: 1 });
  const first = await store.storeInstance(file!);
  const second = await store.storeInstance(file!);
  t.false(first.alreadyStored);
  t.true(second.alreadyStored);
  t.deepEqual({ ...second, alreadyStored: false }, first);
  t.is(first.sizeBytes, file!.byteLength);
  t.deepEqual(await store.seriesInstances(first.seriesId), [first.instanceId]);
});

test("an instance reads back byte for byte, and its size is known", async (t) => {
  const [file] = syntheticStudy({ accessionNumber: "READ", patientId: "P2", patientName: "C^D", slices: 1, rows: 256, columns: 256 });
  const stored = await store.storeInstance(file!);
  t.true((await bytesOf(await store.readInstance(stored.instanceId))).equals(file!));
  t.is(await store.instanceSize(stored.instanceId), file!.byteLength);
});

test("a series lists its instances in InstanceNumber order, however they were stored", async (t) => {
  const files = syntheticStudy({ accessionNumber: "ORDER", patientId: "P3", patientName: "E^F", slices: 12 });
  const shuffled = [7, 2, 11, 0, 5, 9, 1, 10, 3, 8, 6, 4].map((i) => files[i]!);
  // Four at once, as an import does.
  const stored = new Array(shuffled.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < shuffled.length) {
        const i = next++;
        stored[i] = await store.storeInstance(shuffled[i]!);
      }
    }),
  );
  const byFile = new Map(shuffled.map((f, i) => [f, stored[i].instanceId as string]));
  t.deepEqual(await store.seriesInstances(stored[0].seriesId), files.map((f) => byFile.get(f)));
});

test("deleting a study removes it; deleting it again says it was not there", async (t) => {
  const [file] = syntheticStudy({ accessionNumber: "DEL", patientId: "P4", patientName: "G^H", slices: 1 });
  const stored = await store.storeInstance(file!);
  t.true(await store.deleteStudy(stored.studyId));
  t.false(await store.deleteStudy(stored.studyId));
  await t.throwsAsync(store.readInstance(stored.instanceId), { instanceOf: ResearchStoreNotFoundError });
  t.is(await store.instanceSize(stored.instanceId), undefined);
  t.deepEqual(await store.seriesInstances(stored.seriesId), []);
});

test("a file that is not DICOM is refused as a request error", async (t) => {
  await t.throwsAsync(store.storeInstance(new TextEncoder().encode("not dicom")), { instanceOf: ResearchStoreRequestError });
  await t.throwsAsync(store.readInstance("../system"), { instanceOf: ResearchStoreRequestError });
});

test("a store that is gone is unavailable, and says which store", async (t) => {
  const gone = await startOrthanc({ dir: path.join(root, "gone"), name: "gone", dicomweb: false });
  const s = orthancResearchStore(gone);
  await s.ping();
  await gone.kill();
  const err = await t.throwsAsync(s.ping(), { instanceOf: ResearchStoreUnavailableError });
  t.true(err.message.startsWith(`orthanc ${gone.url}`), err.message);
  t.notRegex(err.message, new RegExp(gone.password));
  const [file] = syntheticStudy({ accessionNumber: "GONE", patientId: "P5", patientName: "I^J", slices: 1 });
  await t.throwsAsync(s.storeInstance(file!), { instanceOf: ResearchStoreUnavailableError });
});

test("a store Orthanc 1.10 refuses because another store was creating the same storage directory is sent again once", async (t) => {
  // The race is rare and timing-bound, so a small server answers as Orthanc does when it happens.
  const posts: number[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      posts.push(posts.length + 1);
      res.setHeader("content-type", "application/json");
      if (posts.length === 1) {
        res.statusCode = 500;
        res.end(JSON.stringify({ HttpError: "Internal Server Error", HttpStatus: 500, Message: "Unable to create a subdirectory or a file in the file storage", Method: "POST", OrthancError: "Unable to create a subdirectory or a file in the file storage", OrthancStatus: 14 }));
      } else if (posts.length === 2) {
        res.end(JSON.stringify({ ID: "11111111-22222222-33333333-44444444-55555555", ParentSeries: "s", ParentStudy: "st", Status: "Success" }));
      } else {
        res.statusCode = 500;
        res.end(JSON.stringify({ HttpError: "Internal Server Error", HttpStatus: 500, Message: "Unable to create a subdirectory or a file in the file storage" }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => server.close());
  const s = orthancResearchStore({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, username: "u", password: "p" });
  const stored = await s.storeInstance(new Uint8Array([1, 2, 3]));
  t.is(stored.instanceId, "11111111-22222222-33333333-44444444-55555555");
  t.is(posts.length, 2);
  // Only once: a store that keeps failing is unavailable, as any other 500.
  await t.throwsAsync(s.storeInstance(new Uint8Array([1, 2, 3])), { instanceOf: ResearchStoreUnavailableError });
  t.is(posts.length, 4);
});

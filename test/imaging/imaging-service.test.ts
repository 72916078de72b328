/**
 * The imaging service against real components: PostgreSQL, data-access with a frozen cohort, a PACS
 * Orthanc (DICOMweb) and a research-store Orthanc. Tests run in order on one world.
 */
import { gunzipSync } from "node:zlib";
import { existsSync } from "node:fs";
import * as path from "node:path";
import anyTest, { type TestFn } from "ava";
import { Code } from "@connectrpc/connect";
import { ImportState } from "@flip/gen/flip/imaging/v1/imaging_pb.js";
import type { ImagingClient } from "@flip/imaging/client.js";
import type { RunningImaging } from "@flip/imaging/imaging.js";
import { deidentify, patientPseudonym } from "@flip/imaging/dicom/deidentify.js";
import { profileViolations } from "@flip/imaging/dicom/profile-check.js";
import { projectNiftiDir } from "@flip/imaging/imports/nifti.js";
import { imagingServiceImages, JobImagesError } from "@flip/trust-gateway/training/images.js";
import { connectErrorOf } from "@flip/shared/testing/connect-error-of.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { sampleValue, scrape } from "@flip/shared/testing/metrics-scrape.js";
import { startTcpProxy } from "../support/tcp-proxy.js";
import { orthancInstances, originalFiles, pseudonymKey, settledImport, startImagingService, startImagingWorld, type ImagingWorld } from "./support.js";

/** AVA copies the context for each test, so the service a test restarts lives in one shared object. */
interface Live {
  service: RunningImaging;
  client: ImagingClient;
}
const test = anyTest as TestFn<{ world: ImagingWorld; live: Live; missing: string; twice: string }>;

test.before(async (t) => {
  let missing = "";
  let twice = "";
  const world = await startImagingWorld({
    cohortSize: 4,
    projects: ["p1", "p2", "p3", "p4", "p5"],
    pacsLayout: (studies) => {
      missing = studies[0]!.accession;
      twice = studies[1]!.accession;
      return { lowerCaseOnly: [missing], twice: [twice] };
    },
  });
  const { service, client } = await startImagingService(world, { FLIP_IMAGING_RETRY_BASE_MS: "300", FLIP_IMAGING_MAX_ATTEMPTS: "12", FLIP_METRICS_ADDR: "127.0.0.1:0" });
  t.context = { world, live: { service, client }, missing, twice };
});

test.after.always(async (t) => {
  await t.context.live?.service.close();
  await t.context.world?.close();
});

const importable = (t: { context: { world: ImagingWorld } }) => t.context.world.studies.length - 2;

test.serial("a frozen cohort's studies are imported; a missing (case differs) and an ambiguous accession are reported as such", async (t) => {
  const { world, missing, twice } = t.context;
  const { client } = t.context.live;
  t.true(world.studies.length >= 4, "the cohort has studies to import");
  const started = await client.importStudies({ projectId: "p1" });
  t.is(Number(started.studiesRequested), world.studies.length);
  t.is(Number(started.studiesQueued), world.studies.length);
  const status = await settledImport(client, "p1");
  const c = status.counts!;
  t.log(JSON.stringify(status.accessions.map((a) => [a.state, a.reason, a.attempts])));
  t.is(Number(c.studiesImported), importable(t));
  t.is(Number(c.studiesNotFound), 1);
  t.is(Number(c.studiesAmbiguous), 1);
  t.is(Number(c.studiesFailed), 0);
  const byAccession = new Map(status.accessions.map((a) => [a.accessionNumber, a]));
  t.is(byAccession.get(missing)!.state, ImportState.NOT_FOUND, "QIDO-RS matches case-insensitively; FLIP does not");
  t.is(byAccession.get(twice)!.state, ImportState.AMBIGUOUS);
  t.regex(byAccession.get(twice)!.reason, /2 studies in the PACS have this accession number/);
  // What the hub sees: counts and grouped reasons, never an accession number.
  const wire = JSON.stringify(c, (_, v: unknown) => (typeof v === "bigint" ? Number(v) : v));
  for (const s of world.studies) t.false(wire.toLowerCase().includes(s.accession.toLowerCase()), `counts must not name ${s.accession}`);
  t.true(c.reasons.some((r) => /no study in the PACS has this accession number/.test(r.reason) && r.count === 1n));
  // What an SRE scrapes: the same counts by outcome, and nothing that names a study or a project. The
  // worker counts a study once its import has returned, a moment after the database shows its outcome.
  const metrics = await eventually(
    () => scrape(t.context.live.service.metricsUrl!),
    (m) => sampleValue(m, "flip_imaging_studies_in_progress") === 0 && sampleValue(m, "flip_imaging_studies_total", { outcome: "imported" }) === importable(t),
    { what: "every import counted in /metrics" },
  );
  t.is(sampleValue(metrics, "flip_imaging_studies_total", { outcome: "not_found" }), 1);
  t.is(sampleValue(metrics, "flip_imaging_studies_total", { outcome: "ambiguous" }), 1);
  for (const s of world.studies) t.false(metrics.toLowerCase().includes(s.accession.toLowerCase()), `metrics must not name ${s.accession}`);
});

test.serial("every tag of every stored copy follows the profile; the copies are exactly the de-identified originals", async (t) => {
  const { world } = t.context;
  const stored = await orthancInstances(world.store);
  const ctx = { projectId: "p1", key: await pseudonymKey(world) };
  let checked = 0;
  const storedBytes = new Set([...stored.values()].map((b) => Buffer.from(b).toString("base64")));
  for (const [accession] of world.originals) {
    if (accession === t.context.twice) continue;
    for (const original of originalFiles(world, accession)) {
      const expected = deidentify(original, ctx);
      t.true(storedBytes.has(Buffer.from(expected.bytes).toString("base64")), "the stored copy is the deterministic de-identification of the original");
      t.deepEqual(profileViolations(expected.bytes, original), []);
      checked++;
    }
  }
  t.true(checked > 0);
  for (const [id, bytes] of stored) t.deepEqual(profileViolations(bytes), [], `stored instance ${id}`);
});

test.serial("importing again keeps one copy of each study", async (t) => {
  const { world } = t.context;
  const { client } = t.context.live;
  const before = (await orthancInstances(world.store)).size;
  const again = await client.importStudies({ projectId: "p1" });
  t.is(Number(again.studiesQueued), 2, "only the not-found and the ambiguous accession are looked up again");
  const status = await settledImport(client, "p1");
  t.is(Number(status.counts!.studiesImported), importable(t));
  t.is((await orthancInstances(world.store)).size, before);
});

test.serial("pseudonyms are the same within a project and differ across projects", async (t) => {
  const { world } = t.context;
  const { client } = t.context.live;
  const before = await orthancInstances(world.store);
  await client.importStudies({ projectId: "p2" });
  await settledImport(client, "p2");
  const after = await orthancInstances(world.store);
  t.is(after.size, before.size * 2, "another project keeps its own copies");
  const key = await pseudonymKey(world);
  const asText = [...after.values()].map((b) => Buffer.from(b).toString("latin1"));
  const patients = new Set(world.studies.map((s) => s.patientId));
  for (const patientId of patients) {
    const p1 = patientPseudonym(patientId, { projectId: "p1", key });
    const p2 = patientPseudonym(patientId, { projectId: "p2", key });
    t.not(p1, p2);
    const studiesOfPatient = world.studies.filter((s) => s.patientId === patientId && world.originals.has(s.accession) && s.accession !== t.context.twice);
    if (studiesOfPatient.length === 0) continue;
    t.true(asText.some((s) => s.includes(p1)));
    t.true(asText.some((s) => s.includes(p2)));
    t.false(asText.some((s) => s.includes(patientId)), "the hospital's patient id is nowhere in the store");
  }
});

test.serial("NIfTI volumes are made on request, listed with the DICOM images, and read back", async (t) => {
  const { client } = t.context.live;
  await client.importStudies({ projectId: "p3", convertToNifti: true });
  const status = await settledImport(client, "p3");
  t.is(Number(status.counts!.studiesImported), importable(t));
  t.true(status.convertToNifti);
  t.is(Number(status.counts!.niftiSeries), importable(t), "one volume per imported series");
  const { images } = await client.listProjectImages({ projectId: "p3" });
  const nifti = images.filter((i) => i.format === "nifti");
  t.is(nifti.length, importable(t));
  const chunks: Uint8Array[] = [];
  for await (const m of client.readImage({ projectId: "p3", imageId: nifti[0]!.imageId })) chunks.push(m.data);
  const volume = gunzipSync(Buffer.concat(chunks));
  t.is(volume.readInt32LE(0), 348, "a NIfTI-1 header");
  t.deepEqual([volume.readInt16LE(42), volume.readInt16LE(44), volume.readInt16LE(46)], [32, 32, 8], "32×32 slices, 8 of them");
  t.true(nifti.every((n) => images.some((i) => i.format === "dicom" && i.seriesKey === n.seriesKey)));
});

test.serial("a project's images are served for that project only", async (t) => {
  const { client } = t.context.live;
  const p1 = (await client.listProjectImages({ projectId: "p1" })).images;
  const p2 = (await client.listProjectImages({ projectId: "p2" })).images;
  t.true(p1.length > 0);
  t.is(p1.filter((i) => p2.some((j) => j.imageId === i.imageId)).length, 0, "ids differ across projects");
  const err = await connectErrorOf((async () => {
    for await (const _ of client.readImage({ projectId: "p2", imageId: p1[0]!.imageId })) void _;
  })());
  t.is(err.code, Code.NotFound);
  // The gateway's adapter names the job's project itself: a workload of p2 cannot read p1's image.
  const p2Job = imagingServiceImages(client, "p2", "north");
  const refused = await t.throwsAsync(async () => {
    for await (const _ of p2Job.read(p1[0]!.imageId)) void _;
  });
  t.true(refused instanceof JobImagesError && refused.code === Code.NotFound);
  const never = await connectErrorOf(client.listProjectImages({ projectId: "p-never-imported" }));
  t.is(never.code, Code.FailedPrecondition);
  const chunks: Uint8Array[] = [];
  for await (const m of client.readImage({ projectId: "p1", imageId: p1[0]!.imageId })) chunks.push(m.data);
  t.deepEqual(profileViolations(Buffer.concat(chunks)), []);
});

test.serial("deleting a project's images removes its copies, its NIfTI files and its index", async (t) => {
  const { world } = t.context;
  const { client } = t.context.live;
  const before = (await orthancInstances(world.store)).size;
  const p3 = (await client.listProjectImages({ projectId: "p3" })).images;
  const deleted = await client.deleteProjectImages({ projectId: "p3", reason: "approval withdrawn" });
  t.is(Number(deleted.studiesDeleted), importable(t));
  t.is(Number(deleted.niftiDeleted), p3.filter((i) => i.format === "nifti").length);
  t.is((await orthancInstances(world.store)).size, before - Number(deleted.imagesDeleted));
  t.is((await connectErrorOf(client.getImportStatus({ projectId: "p3" }))).code, Code.NotFound);
  t.true(p3.some((i) => i.format === "nifti"));
  t.false(existsSync(projectNiftiDir(path.join(world.dir, "imaging"), "p3")), "the project's NIfTI volumes are gone from disk");
  const again = await client.deleteProjectImages({ projectId: "p3", reason: "approval withdrawn" });
  t.is(Number(again.studiesDeleted), 0, "deleting twice is harmless");
});

test.serial("a PACS that goes away mid-import: the study in flight is retried with back-off, and the import finishes once with one copy of each", async (t) => {
  const { world } = t.context;
  const o = world.pacs.orthanc;
  const proxy = await startTcpProxy({ host: "127.0.0.1", port: Number(new URL(o.url).port) });
  t.teardown(() => proxy.close());
  await t.context.live.service.close();
  const pacs = { protocol: "dicomweb", url: `${proxy.url}/dicom-web`, username: o.username, password: o.password };
  const running = await startImagingService(world, { FLIP_IMAGING_PACS: JSON.stringify(pacs), FLIP_IMAGING_RETRY_BASE_MS: "300", FLIP_IMAGING_MAX_ATTEMPTS: "12" });
  t.context.live.service = running.service;
  t.context.live.client = running.client;
  const before = (await orthancInstances(world.store)).size;

  // The link drops once about one and a half studies have come down, and the PACS then refuses connections.
  const cut = proxy.cutAfter(50_000, "down").then(() => proxy.refuse(true));
  await running.client.importStudies({ projectId: "p4" });
  await cut;
  const waiting = await eventually(
    () => running.client.getImportStatus({ projectId: "p4" }),
    (s) => s.counts!.reasons.some((r) => r.reason === "retrying: PACS unreachable"),
    { timeoutMs: 30_000, what: "a study waiting for the PACS to come back" },
  );
  t.true(Number(waiting.counts!.studiesImported) < importable(t), "the PACS went away before the import finished");
  proxy.refuse(false);

  const status = await settledImport(running.client, "p4");
  t.is(Number(status.counts!.studiesImported), importable(t));
  t.is(Number(status.counts!.studiesFailed), 0);
  t.true(status.accessions.some((a) => a.attempts >= 2), "the interrupted study was tried again");
  const images = (await running.client.listProjectImages({ projectId: "p4" })).images;
  t.is((await orthancInstances(world.store)).size - before, images.length, "one copy of each instance, the partial attempt's included");
});

test.serial("imports wait for the import window, survive a restart, and never run more at once than allowed", async (t) => {
  const { world } = t.context;
  await t.context.live.service.close();
  // A window that is closed now: it opens in two hours and lasts one.
  const now = new Date();
  const at = (h: number) => `${String((now.getHours() + h) % 24).padStart(2, "0")}:${String(now.getMinutes()).padStart(2, "0")}`;
  let running = await startImagingService(world, { FLIP_IMAGING_WINDOW: `${at(2)}-${at(3)}` });
  await running.client.importStudies({ projectId: "p5" });
  const waiting = await running.client.getImportStatus({ projectId: "p5" });
  t.true(waiting.counts!.waitingForWindow);
  t.is(Number(waiting.counts!.studiesQueued), world.studies.length);
  // A process that stopped in the middle of a study leaves it importing; the next start queues it again.
  await running.service.close();
  const pg = (await import("pg")).default;
  const db = new pg.Client({ connectionString: world.imagingDb.url });
  await db.connect();
  await db.query("update flip_imaging.study set state = 'importing', attempts = 3 where project_id = 'p5' and accession = $1", [world.studies[2]!.accession]);
  await db.end();

  running = await startImagingService(world, { FLIP_IMAGING_CONCURRENCY: "1" });
  t.context.live.service = running.service;
  t.context.live.client = running.client;
  let most = 0;
  const status = await eventually(
    async () => {
      const s = await running.client.getImportStatus({ projectId: "p5" });
      most = Math.max(most, Number(s.counts!.studiesImporting));
      return s;
    },
    (s) => s.counts!.studiesQueued === 0n && s.counts!.studiesImporting === 0n,
    { timeoutMs: 90_000, everyMs: 20, what: "p5's import after the restart" },
  );
  t.is(Number(status.counts!.studiesImported), importable(t));
  t.true(most <= 1, `at most one study imports at once (saw ${most})`);
  const resumed = status.accessions.find((a) => a.accessionNumber === world.studies[2]!.accession)!;
  t.is(resumed.state, ImportState.IMPORTED);
  t.is(resumed.attempts, 3, "the interrupted attempt (the third) is not counted against the study: it ran again as the third");
});

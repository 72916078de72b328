/**
 * Imports over DIMSE, as hospitals without DICOMweb run them: C-FIND to look accession numbers up (exact
 * match), then C-GET, or C-MOVE to the imaging service's own store SCP, against a real Orthanc PACS.
 */
import anyTest, { type TestFn } from "ava";
import { ImportState } from "@flip/gen/flip/imaging/v1/imaging_pb.js";
import { profileViolations } from "@flip/imaging/dicom/profile-check.js";
import { freePort } from "@flip/imaging/orthanc/orthanc-process.js";
import { orthancInstances, settledImport, startImagingService, startImagingWorld, type ImagingWorld } from "./support.js";

const test = anyTest as TestFn<{ world: ImagingWorld; storePort: number; missing: string; twice: string }>;

test.before(async (t) => {
  const storePort = await freePort();
  let missing = "";
  let twice = "";
  const world = await startImagingWorld({
    cohortSize: 4,
    projects: ["by-get", "by-move"],
    dimse: true,
    modalities: { flip: { aet: "FLIPIMG", host: "127.0.0.1", port: storePort } },
    pacsLayout: (studies) => {
      missing = studies[0]!.accession;
      twice = studies[1]!.accession;
      return { lowerCaseOnly: [missing], twice: [twice] };
    },
  });
  t.context = { world, storePort, missing, twice };
});

test.after.always(async (t) => {
  await t.context.world?.close();
});

for (const retrieve of ["get", "move"] as const) {
  test.serial(`C-FIND and C-${retrieve.toUpperCase()}: exact matches imported, a missing and an ambiguous accession reported`, async (t) => {
    const { world, storePort, missing, twice } = t.context;
    const o = world.pacs.orthanc;
    const pacs = { protocol: "dimse", host: o.dicomHost, port: o.dicomPort, calledAet: o.aet, callingAet: "FLIPIMG", retrieve, ...(retrieve === "move" ? { storePort } : {}) };
    const { service, client } = await startImagingService(world, { FLIP_IMAGING_PACS: JSON.stringify(pacs) });
    try {
      const projectId = `by-${retrieve}`;
      const before = (await orthancInstances(world.store)).size;
      await client.importStudies({ projectId });
      const status = await settledImport(client, projectId);
      const c = status.counts!;
      t.is(Number(c.studiesImported), world.studies.length - 2);
      t.is(Number(c.studiesNotFound), 1);
      t.is(Number(c.studiesAmbiguous), 1);
      const byAccession = new Map(status.accessions.map((a) => [a.accessionNumber, a.state]));
      t.is(byAccession.get(missing), ImportState.NOT_FOUND);
      t.is(byAccession.get(twice), ImportState.AMBIGUOUS);
      const stored = await orthancInstances(world.store);
      const expected = (world.studies.length - 2) * 8;
      t.is(stored.size - before, expected, "every slice of every imported study, once");
      for (const bytes of stored.values()) t.deepEqual(profileViolations(bytes), []);
    } finally {
      await service.close();
    }
  });
}

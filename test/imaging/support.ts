/**
 * A trust's imaging world for tests, all real: an OMOP database with a frozen cohort behind a real
 * data-access service, a PACS Orthanc filled with synthetic studies whose accession numbers are the
 * cohort's, a research-store Orthanc, and the imaging service on its own database.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { createDataAccessClient, type DataAccessClient } from "@flip/data-access/client.js";
import { readDataAccessConfig } from "@flip/data-access/config.js";
import { startDataAccess, type RunningDataAccess } from "@flip/data-access/data-access.js";
import { createOmopFixture, type OmopFixture } from "@flip/data-access/testing/omop-fixture.js";
import { createImagingClient, type ImagingClient } from "@flip/imaging/client.js";
import { readImagingConfig } from "@flip/imaging/config.js";
import { startImaging, type RunningImaging } from "@flip/imaging/imaging.js";
import { startOrthanc, type RunningOrthanc } from "@flip/imaging/orthanc/orthanc-process.js";
import { startPacs, type PacsFixture } from "@flip/imaging/testing/orthanc-fixture.js";
import { syntheticStudy, type SyntheticStudyOptions } from "@flip/imaging/testing/synthetic-study.js";
import type { GetImportStatusResponse } from "@flip/gen/flip/imaging/v1/imaging_pb.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { eventually } from "@flip/shared/testing/eventually.js";

export const INTERNAL_KEY = "imaging-test-internal-key-0123456789";
export const log = createLogger({ service: "imaging-test", level: process.env.FLIP_TEST_LOG_LEVEL ?? "silent" });

/** A cohort member's study as the PACS should hold it. */
export interface CohortStudy {
  accession: string;
  personId: string;
  patientId: string;
}

export interface ImagingWorld {
  dir: string;
  omop: OmopFixture;
  dataAccess: RunningDataAccess;
  dataAccessClient: DataAccessClient;
  pacs: PacsFixture;
  store: RunningOrthanc;
  imagingDb: TestDatabase;
  /** The cohort's studies (frozen for every project the world freezes), by accession. */
  studies: CohortStudy[];
  /** The cohort query that selects the world's cohort (for freezing it through the hub). */
  cohortSql: string;
  /** Options each stored original was made from, by accession (two for an ambiguous one). */
  originals: Map<string, SyntheticStudyOptions[]>;
  close(): Promise<void>;
}

/** Synthetic study options for a cohort study: small volumes keep the suite quick on two cores. */
export function studyOptions(s: CohortStudy, seed = 0): SyntheticStudyOptions {
  return {
    accessionNumber: s.accession,
    patientId: s.patientId,
    patientName: `TESTPERSON^P${s.personId}`,
    patientBirthDate: "19610203",
    slices: 8,
    rows: 32,
    columns: 32,
    seed: Number(s.personId) * 10 + seed,
    institutionName: "North General Hospital",
  };
}

/**
 * The world: `persons` OMOP people, the first `cohortSize` people with images frozen as the cohort of each
 * project in `projects`; the PACS holds their studies except as `pacsLayout` says.
 */
export async function startImagingWorld(opts: {
  cohortSize: number;
  projects: string[];
  dimse?: boolean;
  /** The PACS's C-MOVE destinations. */
  modalities?: Record<string, { aet: string; host: string; port: number }>;
  /** Accessions left out of the PACS; accessions stored twice (ambiguous); stored only in lower case. */
  pacsLayout?: (studies: CohortStudy[]) => { missing?: string[]; twice?: string[]; lowerCaseOnly?: string[] };
}): Promise<ImagingWorld> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "flip-imaging-"));
  const omop = await createOmopFixture({ persons: 200, seed: 5 });
  const dataAccess = await startDataAccess(
    readDataAccessConfig({
      FLIP_DATA_ACCESS_ADDR: "127.0.0.1:0",
      FLIP_DATA_ACCESS_DATABASE_URL: omop.db.url,
      FLIP_DATA_ACCESS_READER_URL: omop.readerUrl,
      FLIP_TRUST_INTERNAL_KEY: INTERNAL_KEY,
      FLIP_DATA_ACCESS_THRESHOLD: "3",
      FLIP_LOG_LEVEL: "silent",
    }),
    log,
  );
  const dataAccessClient = createDataAccessClient({ baseUrl: dataAccess.url, internalKey: INTERNAL_KEY });
  const { rows: people } = await omop.owner.query<{ person_id: string }>(
    `select person_id::text from omop.person p where exists (select 1 from omop.image_occurrence io where io.person_id = p.person_id) order by person_id limit $1`,
    [opts.cohortSize],
  );
  const ids = people.map((p) => p.person_id);
  const cohortSql = `select p.person_id, p.year_of_birth from omop.person p where p.person_id in (${ids.join(", ")})`;
  for (const projectId of opts.projects) await dataAccessClient.freezeCohort({ projectId, queryId: `${projectId}-q`, sql: cohortSql, minCount: 3 });
  const { rows } = await omop.owner.query<{ accession_id: string; person_id: string; person_source_value: string }>(
    `select io.accession_id, io.person_id::text, p.person_source_value from omop.image_occurrence io join omop.person p using (person_id)
      where io.person_id = any($1::bigint[]) order by io.accession_id`,
    [ids],
  );
  const studies = rows.map((r) => ({ accession: r.accession_id, personId: r.person_id, patientId: r.person_source_value }));
  const layout = opts.pacsLayout?.(studies) ?? {};
  const originals = new Map<string, SyntheticStudyOptions[]>();
  const toStore: SyntheticStudyOptions[] = [];
  for (const s of studies) {
    if (layout.missing?.includes(s.accession)) continue;
    if (layout.lowerCaseOnly?.includes(s.accession)) {
      toStore.push({ ...studyOptions(s), accessionNumber: s.accession.toLowerCase() });
      continue;
    }
    const copies = layout.twice?.includes(s.accession) ? [studyOptions(s), studyOptions(s, 1)] : [studyOptions(s)];
    originals.set(s.accession, copies);
    toStore.push(...copies);
  }
  const pacs = await startPacs({ dir: path.join(dir, "pacs"), dimse: opts.dimse ?? false, modalities: opts.modalities, studies: toStore, log });
  const store = await startOrthanc({ dir: path.join(dir, "store"), name: "RESEARCH", dicomweb: false, fastStorage: true, log });
  const imagingDb = await createTestDatabase("imaging");
  return {
    dir,
    omop,
    dataAccess,
    dataAccessClient,
    pacs,
    store,
    imagingDb,
    studies,
    cohortSql,
    originals,
    async close() {
      await store.stop().catch(() => undefined);
      await pacs.orthanc.stop().catch(() => undefined);
      await dataAccess.close().catch(() => undefined);
      await omop.close().catch(() => undefined);
      await imagingDb.drop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The imaging service's settings in a world; `env` overrides. */
export function imagingEnv(world: ImagingWorld, env: Record<string, string> = {}): Record<string, string> {
  const o = world.pacs.orthanc;
  return {
    FLIP_IMAGING_ADDR: "127.0.0.1:0",
    FLIP_IMAGING_DATABASE_URL: world.imagingDb.url,
    FLIP_TRUST_INTERNAL_KEY: INTERNAL_KEY,
    FLIP_DATA_ACCESS_URL: world.dataAccess.url,
    FLIP_IMAGING_PACS: JSON.stringify({ protocol: "dicomweb", url: o.dicomWebUrl, username: o.username, password: o.password }),
    FLIP_IMAGING_STORE_URL: world.store.url,
    FLIP_IMAGING_STORE_USER: world.store.username,
    FLIP_IMAGING_STORE_PASSWORD: world.store.password,
    FLIP_IMAGING_DATA_DIR: path.join(world.dir, "imaging"),
    FLIP_IMAGING_RETRY_BASE_MS: "100",
    FLIP_IMAGING_MAX_ATTEMPTS: "4",
    FLIP_LOG_LEVEL: "silent",
    ...env,
  };
}

export async function startImagingService(world: ImagingWorld, env: Record<string, string> = {}): Promise<{ service: RunningImaging; client: ImagingClient }> {
  const service = await startImaging(readImagingConfig(imagingEnv(world, env)), log);
  return { service, client: createImagingClient({ baseUrl: service.url, internalKey: INTERNAL_KEY }) };
}

/** Waits until every study of the project's import has an outcome. */
export async function settledImport(client: ImagingClient, projectId: string, timeoutMs = 90_000): Promise<GetImportStatusResponse> {
  return await eventually(
    () => client.getImportStatus({ projectId }),
    (s) => s.counts !== undefined && s.counts.studiesQueued === 0n && s.counts.studiesImporting === 0n,
    { timeoutMs, everyMs: 100, what: `project ${projectId}'s import settling` },
  );
}

/** The trust's pseudonym key, as the service made it in its data directory. */
export async function pseudonymKey(world: ImagingWorld): Promise<Uint8Array> {
  return Buffer.from((await readFile(path.join(world.dir, "imaging", "pseudonym.key"), "utf8")).trim(), "hex");
}

/** Every instance in an Orthanc: id → Part-10 bytes. */
export async function orthancInstances(o: RunningOrthanc): Promise<Map<string, Uint8Array>> {
  const headers = { authorization: o.authHeader };
  const ids = (await (await fetch(`${o.url}/instances`, { headers })).json()) as string[];
  const out = new Map<string, Uint8Array>();
  for (const id of ids) out.set(id, new Uint8Array(await (await fetch(`${o.url}/instances/${id}/file`, { headers })).arrayBuffer()));
  return out;
}

/** The original Part-10 files of a study as the PACS got them. */
export function originalFiles(world: ImagingWorld, accession: string): Uint8Array[] {
  return (world.originals.get(accession) ?? []).flatMap((o) => syntheticStudy(o));
}

/**
 * A demo trust's imaging: a PACS (Debian's Orthanc with DICOMweb) filled with synthetic CT and MR studies
 * whose accession numbers match the trust's synthetic OMOP `image_occurrence` rows, a second Orthanc as
 * the trust's research store (reachable only by the imaging service), and the imaging service itself.
 * State lives under the trust's demo directory and is kept between runs (the PACS is filled once).
 */
import * as path from "node:path";
import pg from "pg";
import type { Logger } from "@flip/shared/logging/logger.js";
import { readImagingConfig } from "@flip/imaging/config.js";
import { startImaging, type RunningImaging } from "@flip/imaging/imaging.js";
import { startOrthanc, type RunningOrthanc } from "@flip/imaging/orthanc/orthanc-process.js";
import { orthancResearchStore } from "@flip/imaging/store/orthanc-store.js";
import { syntheticStudy } from "@flip/imaging/testing/synthetic-study.js";

/**
 * The studies the demo PACS holds: every study of the people the imaging demo's cohort selects (born
 * 2000–2001, with a CT), so the cohort's import finds them, except one left out on purpose so that the
 * status shows how a study missing from the PACS is reported.
 */
export const DEMO_PACS_PEOPLE_SQL = `
select io.accession_id, io.modality_source_value as modality, p.person_source_value, p.year_of_birth, p.gender_concept_id
from omop.image_occurrence io
join omop.person p on p.person_id = io.person_id
where p.year_of_birth between 2000 and 2001
  and exists (select 1 from omop.image_occurrence ct where ct.person_id = p.person_id and ct.modality_source_value = 'CT')
order by io.accession_id`;

export interface RunningDemoImaging {
  imagingUrl: string;
  pacs: RunningOrthanc;
  studiesInPacs: number;
  close(): Promise<void>;
}

interface PacsRow {
  accession_id: string;
  modality: string;
  person_source_value: string;
  year_of_birth: number;
  gender_concept_id: number;
}

const SURNAMES = ["SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "WILSON", "JOHNSON", "DAVIES", "ROBINSON", "WRIGHT"];
const GIVEN = ["ALEX", "SAM", "JO", "CHRIS", "ROBIN", "MORGAN", "JAMIE", "TAYLOR", "CASEY", "RILEY"];

async function pacsRows(omopUrl: string): Promise<PacsRow[]> {
  const c = new pg.Client({ connectionString: omopUrl });
  await c.connect();
  try {
    return (await c.query<PacsRow>(DEMO_PACS_PEOPLE_SQL)).rows;
  } finally {
    await c.end();
  }
}

async function pacsStudyCount(pacs: RunningOrthanc): Promise<number> {
  const r = await fetch(`${pacs.url}/statistics`, { headers: { authorization: pacs.authHeader } });
  if (!r.ok) throw new Error(`the demo PACS answered ${r.status} to /statistics`);
  return Number(((await r.json()) as { CountStudies: number }).CountStudies);
}

/** Fills the PACS with one synthetic study per row (small volumes: 16 slices of 64×64; CR a single image). */
async function fillPacs(pacs: RunningOrthanc, rows: PacsRow[], seed: number): Promise<void> {
  const store = orthancResearchStore({ url: pacs.url, username: pacs.username, password: pacs.password });
  for (const [i, row] of rows.entries()) {
    const n = Number(row.accession_id.replace(/\D/g, "")) || i;
    const files = syntheticStudy({
      accessionNumber: row.accession_id,
      patientId: row.person_source_value,
      patientName: `${SURNAMES[n % SURNAMES.length]}^${GIVEN[(n >> 3) % GIVEN.length]}`,
      patientBirthDate: `${row.year_of_birth}0101`,
      patientSex: row.gender_concept_id === 8507 ? "M" : "F",
      modality: row.modality === "MR" ? "MR" : "CT",
      slices: row.modality === "CR" ? 1 : 16,
      rows: 64,
      columns: 64,
      seed: seed * 100_000 + n,
    });
    await Promise.all(files.map((f) => store.storeInstance(f)));
  }
}

/** Starts a demo trust's PACS, research store and imaging service (filling the PACS on the first run). */
export async function startDemoImaging(opts: {
  dir: string;
  trustCode: string;
  seed: number;
  omopUrl: string;
  imagingDbUrl: string;
  dataAccessUrl: string;
  internalKey: string;
  log: Logger;
  say: (line: string) => void;
}): Promise<RunningDemoImaging> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
  };
  try {
    const started = await Promise.allSettled([
      startOrthanc({ dir: path.join(opts.dir, "pacs"), name: `${opts.trustCode}-pacs`, aet: `${opts.trustCode.toUpperCase().slice(0, 10)}PACS`, dicomweb: true, log: opts.log }),
      startOrthanc({ dir: path.join(opts.dir, "research-store"), name: `${opts.trustCode}-research`, dicomweb: false, fastStorage: true, log: opts.log }),
    ]);
    const running = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    // Orthanc takes a few seconds to stop: all at once.
    stops.push(async () => void (await Promise.all(running.map((o) => o.stop()))));
    const failed = started.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    const [pacs, store] = running as [RunningOrthanc, RunningOrthanc];

    const rows = await pacsRows(opts.omopUrl);
    // One study is left out of the PACS on purpose: the import reports it as not found.
    const wanted = rows.filter((_, i) => i !== Math.floor(rows.length / 2));
    if ((await pacsStudyCount(pacs)) < wanted.length) {
      opts.say(`  ${opts.trustCode}: filling its PACS with ${wanted.length} synthetic studies (first run only)`);
      await fillPacs(pacs, wanted, opts.seed);
    }
    const imaging: RunningImaging = await startImaging(
      readImagingConfig({
        FLIP_IMAGING_ADDR: "127.0.0.1:0",
        FLIP_IMAGING_DATABASE_URL: opts.imagingDbUrl,
        FLIP_TRUST_INTERNAL_KEY: opts.internalKey,
        FLIP_DATA_ACCESS_URL: opts.dataAccessUrl,
        FLIP_IMAGING_PACS: JSON.stringify({ protocol: "dicomweb", url: pacs.dicomWebUrl, username: pacs.username, password: pacs.password }),
        FLIP_IMAGING_STORE_URL: store.url,
        FLIP_IMAGING_STORE_USER: store.username,
        FLIP_IMAGING_STORE_PASSWORD: store.password,
        FLIP_IMAGING_DATA_DIR: path.join(opts.dir, "imaging"),
        FLIP_LOG_LEVEL: process.env.FLIP_LOG_LEVEL ?? "warn",
      }),
      opts.log,
    );
    stops.push(() => imaging.close());
    return { imagingUrl: imaging.url, pacs, studiesInPacs: wanted.length, close: stopAll };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/**
 * `npm run bench -- imaging [--studies 50] [--slices 32] [--size 128] [--protocol dicomweb|dimse-get|dimse-move]
 *   [--concurrency 2] [--store-concurrency 4] [--store orthanc|none] [--runs 3] [--json]`
 *
 * The trust's import of synthetic studies from a real Orthanc PACS, end to end: look each accession
 * number up, retrieve the study, de-identify every instance, store it in a real research-store Orthanc
 * and index it (the imaging service's ImportWorker on its PostgreSQL index), side by side with the raw
 * retrieve of the same studies from the same PACS in the same run (the same lookups and retrieves, the
 * bytes read and dropped, as many studies at once as the import). Target: import ≥ 50 % of raw.
 * Each measurement runs `--runs` times (import into a fresh project each time); medians count.
 * `--store none` discards the de-identified instances instead of storing them: the import pipeline's own
 * ceiling on this machine, without the research store's cost (a diagnostic, not a deployment).
 */
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { importCounts, importSettled } from "@flip/imaging/catalog/import-counts.js";
import { ensureImagingSchema } from "@flip/imaging/catalog/schema.js";
import { enqueueStudies } from "@flip/imaging/catalog/studies.js";
import { ImportWorker } from "@flip/imaging/imports/import-worker.js";
import { ImagingMetrics } from "@flip/imaging/imports/import-metrics.js";
import { METRICS_OFF } from "@flip/shared/telemetry/metrics.js";
import { freePort, startOrthanc } from "@flip/imaging/orthanc/orthanc-process.js";
import { createPacsClient, type PacsConfig } from "@flip/imaging/pacs/pacs-config.js";
import { orthancResearchStore } from "@flip/imaging/store/orthanc-store.js";
import type { ResearchStore } from "@flip/imaging/store/research-store.js";
import { startPacs } from "@flip/imaging/testing/orthanc-fixture.js";
import { syntheticStudy } from "@flip/imaging/testing/synthetic-study.js";
import { createLogger } from "@flip/shared/logging/logger.js";
import { closePool } from "@flip/shared/postgres/close-pool.js";
import { startEmbeddedPostgres } from "@flip/shared/postgres/embedded.js";

const root = path.resolve(import.meta.dirname, "../../..");
const progress = (msg: string) => process.stderr.write(`[bench imaging] ${msg}\n`);
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs `work` over `items`, `concurrency` at a time. */
async function pooled<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** A research store that keeps nothing: ids are made up, reads find nothing. */
function discardingStore(): ResearchStore {
  let n = 0;
  return {
    description: "discarding (benchmark only)",
    async storeInstance(part10) {
      const id = (++n).toString(16).padStart(8, "0");
      return { instanceId: `00000000-00000000-00000000-00000000-${id}`, seriesId: "discarded", studyId: "discarded", alreadyStored: false, sizeBytes: part10.byteLength };
    },
    async readInstance() {
      throw new Error("the discarding store keeps nothing");
    },
    async instanceSize() {
      return undefined;
    },
    async seriesInstances() {
      return [];
    },
    async deleteStudy() {
      return false;
    },
    async ping() {},
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      studies: { type: "string", default: "50" },
      slices: { type: "string", default: "32" },
      size: { type: "string", default: "128" },
      protocol: { type: "string", default: "dicomweb" },
      concurrency: { type: "string", default: "2" },
      "store-concurrency": { type: "string", default: "4" },
      runs: { type: "string", default: "3" },
      store: { type: "string", default: "orthanc" },
      json: { type: "boolean", default: false },
    },
  });
  const studies = Number(values.studies);
  const slices = Number(values.slices);
  const size = Number(values.size);
  const concurrency = Number(values.concurrency);
  const storeConcurrency = Number(values["store-concurrency"]);
  const runs = Number(values.runs);
  const protocol = values.protocol!;
  if (
    ![studies, slices, size, concurrency, storeConcurrency, runs].every((n) => Number.isInteger(n) && n > 0) ||
    !["dicomweb", "dimse-get", "dimse-move"].includes(protocol) ||
    !["orthanc", "none"].includes(values.store!)
  ) {
    process.stderr.write("--studies, --slices, --size, --concurrency, --store-concurrency and --runs must be positive integers; --protocol dicomweb, dimse-get or dimse-move; --store orthanc or none\n");
    return 2;
  }
  const log = createLogger({ service: "bench-imaging", level: process.env.FLIP_LOG_LEVEL ?? "warn", destination: process.stderr });
  // Under the repository's .tmp: as root, embedded PostgreSQL runs as another user, who cannot enter a 0700 temp dir.
  await mkdir(path.join(root, ".tmp"), { recursive: true });
  const dir = await mkdtemp(path.join(root, ".tmp", "bench-imaging-"));
  await chmod(dir, 0o755);
  const stops: (() => Promise<void>)[] = [];
  try {
    const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, "pg"), port: 0, databases: ["imaging"], log });
    stops.push(() => postgres.remove());
    const storePort = await freePort();
    const pacsFx = await startPacs({ dir: path.join(dir, "pacs"), dimse: protocol !== "dicomweb", modalities: { flip: { aet: "FLIPIMG", host: "127.0.0.1", port: storePort } }, log });
    const pacs = pacsFx.orthanc;
    stops.push(() => pacs.stop());
    const store = await startOrthanc({ dir: path.join(dir, "store"), name: "RESEARCH", dicomweb: false, fastStorage: true, log });
    stops.push(() => store.stop());

    progress(`writing ${studies} synthetic studies of ${slices} slices (${size}×${size}) into the PACS`);
    const accessions: string[] = [];
    let pacsBytes = 0;
    for (let i = 0; i < studies; i++) {
      const accession = `BENCH${String(i).padStart(6, "0")}`;
      const files = syntheticStudy({ accessionNumber: accession, patientId: `MRN${i % 20}`, patientName: `BENCH^PATIENT${i % 20}`, slices, rows: size, columns: size, seed: i });
      pacsBytes += files.reduce((n, f) => n + f.byteLength, 0);
      await pacsFx.stowStudies(files);
      accessions.push(accession);
    }
    const images = studies * slices;

    const config: PacsConfig =
      protocol === "dicomweb"
        ? { protocol: "dicomweb", url: pacs.dicomWebUrl, username: pacs.username, password: pacs.password }
        : { protocol: "dimse", host: pacs.dicomHost, port: pacs.dicomPort!, calledAet: pacs.aet, callingAet: "FLIPIMG", retrieve: protocol === "dimse-get" ? "get" : "move", storePort };
    const client = createPacsClient(config, log);
    stops.push(() => client.close());

    const rawRetrieve = async (): Promise<number> => {
      const started = performance.now();
      let got = 0;
      await pooled(accessions, concurrency, async (accession) => {
        const [study] = await client.findByAccession(accession);
        const r = await client.retrieveStudy(study!.studyInstanceUid, async () => undefined);
        got += r.instances;
      });
      if (got !== images) throw new Error(`the raw retrieve got ${got} of ${images} images`);
      return (performance.now() - started) / 1000;
    };

    const db = new pg.Pool({ connectionString: postgres.urlFor("imaging"), max: 8 });
    stops.push(() => closePool(db));
    await ensureImagingSchema(db);
    const researchStore = values.store === "none" ? discardingStore() : orthancResearchStore(store);
    const pacing = { concurrency, storeConcurrency, window: undefined, maxAttempts: 1, retryBaseMs: 1000 };
    const worker = new ImportWorker({ db, pacs: client, store: researchStore, key: Buffer.alloc(32, 7), dataDir: path.join(dir, "imaging"), pacing, log }, new ImagingMetrics(METRICS_OFF.meter));
    await worker.start();
    stops.push(() => worker.stop());
    const importOnce = async (projectId: string): Promise<number> => {
      const started = performance.now();
      await enqueueStudies(db, projectId, accessions, false);
      worker.poke();
      for (;;) {
        const counts = await importCounts(db, projectId);
        if (importSettled(counts)) {
          if (Number(counts.studiesImported) !== studies) throw new Error(`imported ${counts.studiesImported} of ${studies} studies (${counts.reasons.map((r) => r.reason).join("; ")})`);
          return (performance.now() - started) / 1000;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    };

    const raw: number[] = [];
    const imported: number[] = [];
    progress(`warming up (one raw retrieve of every study)`);
    await rawRetrieve();
    for (let i = 0; i < runs; i++) {
      raw.push(await rawRetrieve());
      progress(`run ${i + 1}: raw retrieve ${round(raw.at(-1)!, 2)} s`);
      imported.push(await importOnce(`bench-${i}`));
      progress(`run ${i + 1}: import ${round(imported.at(-1)!, 2)} s`);
    }
    const rawS = median(raw);
    const importS = median(imported);
    const result = {
      benchmark: "imaging",
      protocol,
      store: values.store,
      studies,
      images,
      pacs_mb: round(pacsBytes / 1e6),
      concurrency,
      store_concurrency: storeConcurrency,
      raw_retrieve_s: round(rawS, 3),
      raw_studies_per_s: round(studies / rawS),
      raw_images_per_s: round(images / rawS),
      import_s: round(importS, 3),
      import_studies_per_s: round(studies / importS),
      import_images_per_s: round(images / importS),
      ratio_to_raw: round(rawS / importS, 2),
      target_ratio: 0.5,
      runs_raw_s: raw.map((s) => round(s, 3)),
      runs_import_s: imported.map((s) => round(s, 3)),
      machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? "", node: process.version },
    };
    process.stdout.write(values.json ? JSON.stringify(result) + "\n" : Object.entries(result).map(([k, v]) => `${k.padEnd(22)} ${typeof v === "object" ? JSON.stringify(v) : v}`).join("\n") + "\n");
    return 0;
  } finally {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

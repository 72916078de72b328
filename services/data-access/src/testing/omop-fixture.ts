/**
 * Test fixture: a fresh database on the test PostgreSQL server, loaded with a synthetic OMOP trust, with the
 * reader role provisioned exactly as the service provisions it, and flip_local created.
 */
import pg from "pg";
import { createLogger, type Logger } from "@flip/shared/logging/logger.js";
import { closePool } from "@flip/shared/postgres/close-pool.js";
import { createTestDatabase, type TestDatabase } from "@flip/shared/testing/postgres.js";
import { generateOmop } from "./omop/generate.js";
import { ensureLocalSchema } from "../cohorts/frozen-store.js";
import { createReaderPool } from "../execution/executor.js";
import { provisionReader } from "../execution/reader-role.js";

export interface OmopFixture {
  db: TestDatabase;
  /** Superuser pool on the test database (the "owner"). */
  owner: pg.Pool;
  /** Pool connected as flip_cohort_reader, values as text. */
  reader: pg.Pool;
  readerUrl: string;
  log: Logger;
  close(): Promise<void>;
}

export async function createOmopFixture(opts: { persons: number; seed?: number; profile?: string }): Promise<OmopFixture> {
  const db = await createTestDatabase("omop");
  await generateOmop(db.url, { persons: opts.persons, seed: opts.seed ?? 1, profile: opts.profile ?? "north" });
  const owner = new pg.Pool({ connectionString: db.url, max: 4 });
  const readerUrl = await provisionReader(owner, db.url);
  await ensureLocalSchema(owner);
  const reader = createReaderPool(readerUrl, 4);
  return {
    db,
    owner,
    reader,
    readerUrl,
    log: createLogger({ service: "data-access-test", level: "silent" }),
    async close() {
      await closePool(reader);
      await closePool(owner);
      await db.drop();
    },
  };
}

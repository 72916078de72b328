/**
 * Loads a synthetic trust into PostgreSQL: schema `omop` (created when missing), its data replaced in one
 * transaction, rows sent column-wise through `unnest` so thousands of persons load in a few seconds.
 */
import type pg from "pg";
import { applyOmopSchema, OMOP_SCHEMA, OMOP_TABLES, withClient, type OmopTable } from "./schema.js";
import { generatePopulation, type OmopRow } from "./population.js";
import { profileNamed, type TrustProfile } from "./profiles.js";

export interface GenerateOptions {
  seed: number;
  persons: number;
  /** A profile name (`north`, `south`, `central`) or a custom profile. */
  profile: string | TrustProfile;
}

export interface GenerateSummary {
  profile: string;
  /** Rows loaded, by table. */
  rows: Record<string, number>;
  elapsedMs: number;
}

/** Rows per INSERT; one array parameter per column, so this is bounded by memory, not by the 65535-parameter limit. */
const BATCH_ROWS = 20_000;

/** Creates schema `omop` if needed and replaces its contents with a generated population. */
export async function generateOmop(db: string | pg.ClientBase, opts: GenerateOptions): Promise<GenerateSummary> {
  if (!Number.isInteger(opts.persons) || opts.persons < 0) throw new Error(`persons must be a non-negative integer, got ${opts.persons}`);
  const started = Date.now();
  const profile = typeof opts.profile === "string" ? profileNamed(opts.profile) : opts.profile;
  const data = generatePopulation({ seed: opts.seed, persons: opts.persons, profile });
  return await withClient(db, async (client) => {
    await applyOmopSchema(client);
    await client.query("begin");
    try {
      await client.query(`truncate ${OMOP_TABLES.map((t) => `${OMOP_SCHEMA}.${t.name}`).join(", ")}`);
      const rows: Record<string, number> = {};
      for (const table of OMOP_TABLES) {
        const tableRows = data[table.name] ?? [];
        for (let i = 0; i < tableRows.length; i += BATCH_ROWS) await insertBatch(client, table, tableRows.slice(i, i + BATCH_ROWS));
        rows[table.name] = tableRows.length;
      }
      await client.query("commit");
      await client.query(`analyze ${OMOP_TABLES.map((t) => `${OMOP_SCHEMA}.${t.name}`).join(", ")}`);
      return { profile: profile.name, rows, elapsedMs: Date.now() - started };
    } catch (e) {
      await client.query("rollback").catch(() => undefined);
      throw e;
    }
  });
}

async function insertBatch(client: pg.ClientBase, table: OmopTable, rows: OmopRow[]): Promise<void> {
  if (rows.length === 0) return;
  const columns = table.columns.map((c) => c.name);
  const arrays = table.columns.map((c) => rows.map((r) => r[c.name] ?? null));
  const casts = table.columns.map((c, i) => `$${i + 1}::${c.type.replace(/\(.*\)$/, "")}[]`);
  await client.query(`insert into ${OMOP_SCHEMA}.${table.name} (${columns.join(", ")}) select * from unnest(${casts.join(", ")})`, arrays);
}

/**
 * Runs validated cohort SQL as the reader role, inside `BEGIN READ ONLY` with a statement timeout and
 * `search_path = omop`. Validation is the first line of defence; this is the second: the role can only
 * read `omop`, and the transaction cannot write even if a query slipped past validation.
 */
import pg from "pg";
import { DatabaseUnavailableError, isConnectionFailure, ResultTooLargeError, StatementTimeoutError, toExecutionError, toReadingError } from "./errors.js";
import { OMOP_SCHEMA } from "./reader-role.js";

export interface ResultColumn {
  name: string;
  /** PostgreSQL type OID. */
  typeId: number;
  /** The table column this output column reads directly (despite any alias), when it does. */
  sourceColumn?: string;
}

/** Values are PostgreSQL's text output, untouched: no lossy conversion of bigint, numeric or dates. */
export type ResultRow = (string | null)[];

export interface ResultSet {
  columns: ResultColumn[];
  rows: ResultRow[];
}

export interface ExecutorOptions {
  /** Per statement, and in total for `query`. */
  statementTimeoutMs: number;
  /** Most rows `query` returns before it refuses with ResultTooLargeError. */
  maxRows: number;
}

/** A read-only transaction as the reader role. */
export interface ReadOnlyTransaction {
  query(sql: string, params?: unknown[]): Promise<pg.QueryArrayResult<ResultRow>>;
}

/** Every value as its text form (see ResultRow). */
const RAW_TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

const CURSOR = "flip_cohort";
const FETCH_ROWS = 5_000;

/** Creates the connection pool for the reader role. */
export function createReaderPool(readerUrl: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: readerUrl, max, types: RAW_TEXT, idleTimeoutMillis: 30_000, application_name: "flip-data-access" });
  // An idle client losing its connection must not crash the process; the next checkout reconnects.
  pool.on("error", () => undefined);
  return pool;
}

export class ReadOnlyExecutor {
  constructor(
    private readonly pool: pg.Pool,
    readonly options: ExecutorOptions,
  ) {}

  /** Runs `work` in a READ ONLY transaction that is always rolled back. */
  async readOnly<T>(work: (tx: ReadOnlyTransaction) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw new DatabaseUnavailableError({ cause: e });
    }
    let broken: Error | undefined;
    try {
      await client.query("BEGIN READ ONLY");
      await client.query(`SET LOCAL statement_timeout = ${Math.trunc(this.options.statementTimeoutMs)}`);
      await client.query(`SET LOCAL search_path = ${OMOP_SCHEMA}`);
      // Validation re-emits string literals in standard form; make sure the server reads them that way.
      await client.query("SET LOCAL standard_conforming_strings = on");
      const tx: ReadOnlyTransaction = {
        query: (sql, params) => client.query<ResultRow>({ text: sql, values: params, rowMode: "array" }),
      };
      return await work(tx);
    } catch (e) {
      if (isConnectionFailure(e)) broken = e instanceof Error ? e : new Error(String(e));
      throw toExecutionError(e, this.options.statementTimeoutMs);
    } finally {
      if (!broken) await client.query("ROLLBACK").catch((e: unknown) => (broken = e instanceof Error ? e : new Error(String(e))));
      client.release(broken);
    }
  }

  /**
   * All rows of a query, through a cursor so that an oversized result is refused after maxRows + 1 rows
   * rather than loaded whole. The timeout covers the whole query, not each fetch.
   *
   * DECLARE parses and plans without reading a row, so its errors (an unknown column, a type mismatch) say
   * nothing about the data and keep their message. Any error once FETCH reads rows may hinge on one record
   * and becomes DataDependentFailureError (timeouts and lost connections excepted).
   */
  async query(sql: string, params: unknown[] = []): Promise<ResultSet> {
    const deadline = Date.now() + this.options.statementTimeoutMs;
    const timeoutMs = this.options.statementTimeoutMs;
    return await this.readOnly(async (tx) => {
      await tx.query(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${sql}`, params);
      const rows: ResultRow[] = [];
      let columns: ResultColumn[] = [];
      for (;;) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new StatementTimeoutError(timeoutMs);
        let batch: pg.QueryArrayResult<ResultRow>;
        try {
          await tx.query(`SET LOCAL statement_timeout = ${remaining}`);
          batch = await tx.query(`FETCH FORWARD ${FETCH_ROWS} FROM ${CURSOR}`);
        } catch (e) {
          throw toReadingError(e, timeoutMs);
        }
        if (columns.length === 0) columns = await describeColumns(tx, batch.fields);
        for (const r of batch.rows) rows.push(r);
        if (rows.length > this.options.maxRows) throw new ResultTooLargeError(this.options.maxRows);
        if (batch.rows.length < FETCH_ROWS) return { columns, rows };
      }
    });
  }

  /** Streams a query's rows in batches; the transaction stays open until the consumer finishes or stops. */
  async *batches(sql: string, params: unknown[], batchSize: number): AsyncGenerator<ResultSet> {
    const size = Math.max(1, Math.trunc(batchSize));
    // An async generator cannot yield from inside readOnly's callback, so the hand-off goes through a
    // queue: the transaction fetches one batch at a time and waits until the previous one was taken.
    const handoff = new BatchHandoff();
    const running = this.readOnly(async (tx) => {
      await tx.query(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${sql}`, params);
      let columns: ResultColumn[] | undefined;
      for (;;) {
        const batch = await tx.query(`FETCH FORWARD ${size} FROM ${CURSOR}`);
        columns ??= await describeColumns(tx, batch.fields);
        const wanted = await handoff.offer({ columns, rows: batch.rows });
        if (!wanted || batch.rows.length < size) return;
      }
    }).then(
      () => handoff.finish(),
      (e: unknown) => handoff.fail(e),
    );
    try {
      for (;;) {
        const next = await handoff.take();
        if (next === undefined) break;
        yield next;
      }
    } finally {
      handoff.cancel();
      await running;
    }
  }
}

/** Column names and types, with the table column each one reads directly (found in pg_attribute). */
async function describeColumns(tx: ReadOnlyTransaction, fields: pg.FieldDef[]): Promise<ResultColumn[]> {
  const direct = fields.filter((f) => f.tableID !== 0);
  const sources = new Map<string, string>();
  if (direct.length > 0) {
    const { rows } = await tx.query("select attrelid, attnum, attname from pg_catalog.pg_attribute where attrelid = any($1::oid[]) and attnum > 0", [
      [...new Set(direct.map((f) => f.tableID))],
    ]);
    for (const [relid, attnum, attname] of rows) sources.set(`${relid}/${attnum}`, attname ?? "");
  }
  return fields.map((f) => {
    const sourceColumn = sources.get(`${f.tableID}/${f.columnID}`);
    return sourceColumn === undefined ? { name: f.name, typeId: f.dataTypeID } : { name: f.name, typeId: f.dataTypeID, sourceColumn };
  });
}

/** A one-slot queue between the transaction (producer) and the async generator (consumer). */
class BatchHandoff {
  private slot: ResultSet | undefined;
  private done = false;
  private cancelled = false;
  private error: unknown;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: ((wanted: boolean) => void) | undefined;

  /** Hands a batch over; resolves true once it was taken, false if the consumer went away. */
  offer(batch: ResultSet): Promise<boolean> {
    if (this.cancelled) return Promise.resolve(false);
    this.slot = batch;
    this.wakeConsumer?.();
    return new Promise((resolve) => (this.wakeProducer = resolve));
  }

  async take(): Promise<ResultSet | undefined> {
    for (;;) {
      if (this.slot) {
        const batch = this.slot;
        this.slot = undefined;
        const wake = this.wakeProducer;
        this.wakeProducer = undefined;
        wake?.(true);
        return batch;
      }
      if (this.error !== undefined) throw this.error;
      if (this.done) return undefined;
      await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
      this.wakeConsumer = undefined;
    }
  }

  finish(): void {
    this.done = true;
    this.wakeConsumer?.();
  }

  fail(e: unknown): void {
    this.error = e;
    this.wakeConsumer?.();
  }

  cancel(): void {
    this.cancelled = true;
    this.wakeProducer?.(false);
    this.wakeProducer = undefined;
  }
}

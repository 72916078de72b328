/**
 * The trust's guard against differencing: a threshold hides one small count, but two answered queries
 * that differ by one literal, or whose cohorts differ by a few persons, give that count away by
 * subtraction. Per project, the trust keeps recent query fingerprints and the cohorts they answered (as
 * person ids hashed with a key that never leaves `flip_local`), answers a differencing query as
 * suppressed, records why in a local ledger, and caps the queries a project may run per UTC day.
 */
import { createHmac, randomBytes } from "node:crypto";
import type pg from "pg";
import { LOCAL_SCHEMA, ownerWork } from "./local-store.js";

/** How far back a query counts as recent for the differencing rules. */
export const RECENT_WINDOW_HOURS = 24;
/** Most recent answered queries compared with a new one; bounds the work per query. */
const MAX_COMPARED = 200;

export type GuardRule = "repeated_with_other_literals" | "cohort_difference_below_threshold" | "data_error" | "budget_spent";

export const GUARD_DDL = [
  `create table if not exists ${LOCAL_SCHEMA}.guard_key (
     id integer primary key check (id = 1),
     key bytea not null
   )`,
  `create table if not exists ${LOCAL_SCHEMA}.query_history (
     id bigserial primary key,
     project_id text not null,
     asked_at timestamptz not null,
     fingerprint text not null,
     query_sha256 text not null,
     answered boolean not null,
     member_count integer,
     member_hashes text[]
   )`,
  `create index if not exists query_history_project_time on ${LOCAL_SCHEMA}.query_history (project_id, asked_at)`,
  `create table if not exists ${LOCAL_SCHEMA}.query_ledger (
     id bigserial primary key,
     project_id text not null,
     user_id text,
     query_id text not null,
     rule text not null,
     decided_at timestamptz not null
   )`,
];

/** The project's daily budget is spent; the message says when it resets. */
export class QueryBudgetSpentError extends Error {
  override readonly name = "QueryBudgetSpentError";
  constructor(
    readonly perDay: number,
    readonly resetsAt: Date,
  ) {
    super(`this project's budget of ${perDay} cohort queries per day at this trust is spent; it resets at ${resetsAt.toISOString()} (00:00 UTC)`);
  }
}

export interface QueryBudget {
  perDay: number;
  used: number;
  remaining: number;
  resetsAt: Date;
}

/** One executed statistics query, as the guard sees it: no SQL text and no row values. */
export interface GuardedQuery {
  projectId: string;
  queryId: string;
  userId?: string;
  fingerprint: string;
  querySha256: string;
  /** Whether the statistics would leave the trust (not suppressed by the threshold). */
  wouldAnswer: boolean;
  /** The cohort's person ids, when the result has a person_id column. */
  personIds?: readonly string[];
  threshold: number;
  /** The query failed on the data and is answered as suppressed anyway; recorded for the ledger. */
  failedOnData: boolean;
}

export interface GuardVerdict {
  /** Answer as suppressed, whatever the statistics. */
  suppress: boolean;
  rule?: GuardRule;
}

export interface QueryGuardOptions {
  perDay: number;
  now?: () => Date;
}

export class QueryGuard {
  private key: Buffer | undefined;
  private readonly now: () => Date;

  constructor(
    private readonly owner: pg.Pool,
    private readonly options: QueryGuardOptions,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  async budget(projectId: string): Promise<QueryBudget> {
    const { start, end } = utcDay(this.now());
    const used = await ownerWork(this.owner, (c) => usedToday(c, projectId, start));
    return { perDay: this.options.perDay, used, remaining: Math.max(0, this.options.perDay - used), resetsAt: end };
  }

  /** Refuses early, before the query runs, when the budget is already spent. */
  async assertBudgetLeft(q: Pick<GuardedQuery, "projectId" | "queryId" | "userId">): Promise<void> {
    const b = await this.budget(q.projectId);
    if (b.remaining > 0) return;
    await ownerWork(this.owner, (c) => addLedger(c, q, "budget_spent", this.now()));
    throw new QueryBudgetSpentError(b.perDay, b.resetsAt);
  }

  /**
   * Counts the query against the budget, decides whether it differences a recent one, and records it.
   * One transaction under a per-project advisory lock, so two concurrent queries are compared with each
   * other rather than both slipping past.
   */
  async record(q: GuardedQuery): Promise<GuardVerdict> {
    const key = await this.hashKey();
    const memberHashes = q.personIds ? [...new Set(q.personIds)].map((id) => createHmac("sha256", key).update(id).digest("hex").slice(0, 32)) : undefined;
    const now = this.now();
    const { start, end } = utcDay(now);
    return await ownerWork(this.owner, async (c) => {
      await c.query("begin");
      try {
        await c.query("select pg_advisory_xact_lock(hashtext('flip.query-guard:' || $1))", [q.projectId]);
        // Nothing older than the differencing window or today's budget is needed; cohorts are not kept longer.
        const keepFrom = new Date(Math.min(start.getTime(), now.getTime() - RECENT_WINDOW_HOURS * 3_600_000));
        await c.query(`delete from ${LOCAL_SCHEMA}.query_history where project_id = $1 and asked_at < $2`, [q.projectId, keepFrom]);
        if ((await usedToday(c, q.projectId, start)) >= this.options.perDay) {
          await addLedger(c, q, "budget_spent", now);
          await c.query("commit");
          throw new QueryBudgetSpentError(this.options.perDay, end);
        }
        const rule = q.failedOnData ? "data_error" : q.wouldAnswer ? await differencingRule(c, q, memberHashes, now) : undefined;
        const answered = q.wouldAnswer && rule === undefined;
        await c.query(
          `insert into ${LOCAL_SCHEMA}.query_history (project_id, asked_at, fingerprint, query_sha256, answered, member_count, member_hashes)
           values ($1, $2, $3, $4, $5, $6, $7)`,
          [q.projectId, now, q.fingerprint, q.querySha256, answered, answered && memberHashes ? memberHashes.length : null, answered ? (memberHashes ?? null) : null],
        );
        if (rule) await addLedger(c, q, rule, now);
        await c.query("commit");
        return rule ? { suppress: true, rule } : { suppress: false };
      } catch (e) {
        await c.query("rollback").catch(() => undefined);
        throw e;
      }
    });
  }

  /** The trust-local key person ids are hashed with; created once, shared by every replica through flip_local. */
  private async hashKey(): Promise<Buffer> {
    if (this.key) return this.key;
    const key = await ownerWork(this.owner, async (c) => {
      await c.query(`insert into ${LOCAL_SCHEMA}.guard_key (id, key) values (1, $1) on conflict (id) do nothing`, [randomBytes(32)]);
      const { rows } = await c.query<{ key: Buffer }>(`select key from ${LOCAL_SCHEMA}.guard_key where id = 1`);
      return rows[0]!.key;
    });
    this.key = key;
    return key;
  }
}

/** Which differencing rule a would-be answer breaks against the project's recent answered queries, if any. */
async function differencingRule(c: pg.ClientBase, q: GuardedQuery, members: string[] | undefined, now: Date): Promise<GuardRule | undefined> {
  const since = new Date(now.getTime() - RECENT_WINDOW_HOURS * 3_600_000);
  const { rows } = await c.query<{ id: string; fingerprint: string; query_sha256: string; member_count: number | null }>(
    `select id, fingerprint, query_sha256, member_count from ${LOCAL_SCHEMA}.query_history
      where project_id = $1 and answered and asked_at >= $2
      order by asked_at desc limit ${MAX_COMPARED}`,
    [q.projectId, since],
  );
  if (rows.some((r) => r.fingerprint === q.fingerprint && r.query_sha256 !== q.querySha256)) return "repeated_with_other_literals";
  if (!members) return undefined;
  // Only cohorts whose sizes differ by less than T can differ by less than T persons.
  const candidates = rows.filter((r) => r.member_count !== null && Math.abs(r.member_count - members.length) < q.threshold).map((r) => r.id);
  if (candidates.length === 0) return undefined;
  const mine = new Set(members);
  const { rows: cohorts } = await c.query<{ member_hashes: string[] }>(`select member_hashes from ${LOCAL_SCHEMA}.query_history where id = any($1::bigint[])`, [candidates]);
  for (const { member_hashes: theirs } of cohorts) {
    const shared = theirs.reduce((n, h) => n + (mine.has(h) ? 1 : 0), 0);
    const differing = mine.size + theirs.length - 2 * shared;
    if (differing > 0 && differing < q.threshold) return "cohort_difference_below_threshold";
  }
  return undefined;
}

async function usedToday(c: pg.ClientBase, projectId: string, dayStart: Date): Promise<number> {
  const { rows } = await c.query<{ n: number }>(`select count(*)::int as n from ${LOCAL_SCHEMA}.query_history where project_id = $1 and asked_at >= $2`, [projectId, dayStart]);
  return rows[0]!.n;
}

async function addLedger(c: pg.ClientBase, q: Pick<GuardedQuery, "projectId" | "queryId" | "userId">, rule: GuardRule, at: Date): Promise<void> {
  await c.query(`insert into ${LOCAL_SCHEMA}.query_ledger (project_id, user_id, query_id, rule, decided_at) values ($1, $2, $3, $4, $5)`, [
    q.projectId,
    q.userId ?? null,
    q.queryId,
    rule,
    at,
  ]);
}

function utcDay(now: Date): { start: Date; end: Date } {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  return { start, end: new Date(start.getTime() + 86_400_000) };
}

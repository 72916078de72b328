import { Migration } from "@mikro-orm/migrations";

/**
 * Fair claiming reads a trust's recently ended tasks beside its open ones, so it needs them by end time;
 * the per-user limit on cohort queries counts a user's queries that still have pending answers.
 * Create RPCs remember their idempotency keys: one row per (caller, RPC, key) holding a fingerprint of
 * the request and the response it got, so a retry gets the same answer instead of a second creation.
 */
export class M0011FairnessAndIdempotency extends Migration {
  override name = "m0011-fairness-and-idempotency";

  override up(): void {
    this.addSql(`create index task_recently_ended_idx on task (trust_id, kind, ended_at) where ended_at is not null`);
    this.addSql(`create index cohort_query_creator_idx on cohort_query (created_by)`);
    this.addSql(`create index cohort_answer_pending_idx on cohort_answer (query_id) where state = 'pending'`);
    this.addSql(`
      create table idempotency_key (
        caller text not null,
        rpc text not null,
        key text not null,
        request_sha256 text not null,
        response bytea not null,
        created_at timestamptz not null default now(),
        primary key (caller, rpc, key)
      )`);
    this.addSql(`create index idempotency_key_created_idx on idempotency_key (created_at)`);
  }
}

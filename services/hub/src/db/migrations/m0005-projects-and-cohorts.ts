import { Migration } from "@mikro-orm/migrations";

/** Projects, members, per-trust decisions, cohort queries and each trust's aggregate answer. */
export class M0005ProjectsAndCohorts extends Migration {
  override name = "m0005-projects-and-cohorts";

  override up(): void {
    this.addSql(`
      create table project (
        id uuid primary key,
        name text not null,
        description text not null default '',
        owner_id text not null,
        status text not null check (status in ('unstaged', 'staged', 'approved')),
        created_at timestamptz not null,
        deleted_at timestamptz,
        latest_query_id uuid,
        version integer not null default 1
      )`);
    this.addSql(`create unique index project_live_name_idx on project (lower(name)) where deleted_at is null`);
    this.addSql(`create index project_owner_idx on project (owner_id)`);
    this.addSql(`
      create table project_member (
        project_id uuid not null references project (id),
        user_id text not null,
        added_at timestamptz not null,
        primary key (project_id, user_id)
      )`);
    this.addSql(`create index project_member_user_idx on project_member (user_id)`);
    this.addSql(`
      create table project_trust (
        project_id uuid not null references project (id),
        trust_id uuid not null references trust (id),
        state text not null check (state in ('pending', 'approved', 'declined')),
        decided_as text,
        decided_by text,
        decided_at timestamptz,
        reason text,
        freeze_state text not null check (freeze_state in ('not_requested', 'pending', 'frozen', 'suppressed', 'failed')),
        freeze_task_id uuid,
        frozen_person_count bigint,
        staged_at timestamptz not null,
        primary key (project_id, trust_id)
      )`);
    this.addSql(`create index project_trust_trust_idx on project_trust (trust_id, state)`);
    this.addSql(`
      create table cohort_query (
        id uuid primary key,
        project_id uuid not null references project (id),
        name text not null,
        sql text not null,
        created_by text not null,
        created_at timestamptz not null
      )`);
    this.addSql(`create index cohort_query_project_idx on cohort_query (project_id, created_at desc)`);
    this.addSql(`
      create table cohort_answer (
        query_id uuid not null references cohort_query (id),
        trust_id uuid not null references trust (id),
        task_id uuid not null unique,
        state text not null check (state in ('pending', 'ok', 'suppressed', 'empty', 'error')),
        record_count bigint not null default 0,
        columns jsonb,
        threshold integer not null default 0,
        error text,
        answered_at timestamptz,
        primary key (query_id, trust_id)
      )`);
  }
}

import { Migration } from "@mikro-orm/migrations";

/** Tasks for trusts (the link's outbox), their attempts, and which stream holds each trust's link. */
export class M0002Tasks extends Migration {
  override name = "m0002-tasks";

  override up(): void {
    this.addSql(`
      create table task (
        id uuid primary key,
        trust_id uuid not null references trust (id),
        kind text not null,
        project_id text,
        spec jsonb not null,
        state text not null check (state in ('pending', 'offered', 'running', 'succeeded', 'failed', 'cancelled', 'expired')),
        attempt integer not null default 0,
        max_attempts integer not null check (max_attempts > 0),
        deadline timestamptz not null,
        created_at timestamptz not null,
        created_by text not null,
        updated_at timestamptz not null,
        ended_at timestamptz,
        end_reason text,
        output jsonb,
        error jsonb,
        progress double precision not null default 0,
        progress_message text not null default '',
        trace_context jsonb not null default '{}',
        stream_id uuid
      )`);
    // Claims read a trust's pending tasks of one kind, oldest first.
    this.addSql(`create index task_claim_idx on task (trust_id, kind, created_at) where state = 'pending'`);
    this.addSql(`create index task_open_idx on task (trust_id, state) where state in ('pending', 'offered', 'running')`);
    this.addSql(`create index task_deadline_idx on task (deadline) where state in ('pending', 'offered', 'running')`);
    this.addSql(`create index task_stream_idx on task (stream_id) where stream_id is not null`);
    this.addSql(`create index task_list_idx on task (created_at desc, id)`);
    this.addSql(`create index task_trust_list_idx on task (trust_id, created_at desc, id)`);
    this.addSql(`
      create table task_attempt (
        task_id uuid not null references task (id),
        attempt integer not null,
        stream_id uuid not null,
        hub_instance text not null,
        offered_at timestamptz not null,
        acked_at timestamptz,
        ended_at timestamptz,
        outcome text check (outcome in ('succeeded', 'failed', 'retry', 'lost', 'cancelled', 'expired')),
        detail text,
        primary key (task_id, attempt)
      )`);
    this.addSql(`
      create table trust_link (
        trust_id uuid primary key references trust (id),
        stream_id uuid not null unique,
        hub_instance text not null,
        connected_at timestamptz not null,
        gateway_version text not null,
        capacity jsonb not null
      )`);
  }
}

import { Migration } from "@mikro-orm/migrations";

/**
 * Federated training: models (a workload image, the researcher's files and config), jobs that train
 * them on trusts round by round, each trust's part (its assigned GPUs), rounds, the updates that arrived
 * (one per trust per round: an update is never counted twice), the tasks that carry rounds over the
 * link, and the metrics and events workloads report (each stored once, by its sequence number).
 */
export class M0009Training extends Migration {
  override name = "m0009-training";

  override up(): void {
    this.addSql(`create table model (
      id uuid primary key,
      project_id uuid not null references project (id),
      name text not null,
      description text not null default '',
      owner_id text not null,
      image text not null,
      config_json text not null,
      bundle_artifact_id uuid references artifact (id),
      bundle_sha256 text,
      bundle_size_bytes bigint not null default 0,
      file_paths jsonb not null default '[]',
      initial_weights_artifact_id uuid references artifact (id),
      idempotency_key text,
      created_at timestamptz not null,
      deleted_at timestamptz
    )`);
    this.addSql(`create unique index model_name_unique on model (project_id, lower(name)) where deleted_at is null`);
    this.addSql(`create unique index model_idempotency_unique on model (owner_id, idempotency_key) where idempotency_key is not null`);
    this.addSql(`create index model_project_idx on model (project_id, created_at)`);

    this.addSql(`create table job (
      id uuid primary key,
      model_id uuid not null references model (id),
      project_id uuid not null references project (id),
      kind text not null check (kind in ('train', 'evaluate')),
      state text not null check (state in ('queued', 'running', 'completed', 'failed', 'aborted')),
      trust_ids uuid[] not null,
      rounds integer not null check (rounds >= 1),
      current_round integer not null default 0,
      gpus_per_trust integer not null check (gpus_per_trust >= 0),
      min_updates integer not null check (min_updates >= 1),
      round_timeout_s integer not null,
      queue_seq bigserial not null,
      created_by text not null,
      idempotency_key text,
      created_at timestamptz not null,
      started_at timestamptz,
      ended_at timestamptz,
      end_reason text,
      global_weights_artifact_id uuid references artifact (id),
      check ((state in ('completed', 'failed', 'aborted')) = (ended_at is not null))
    )`);
    this.addSql(`create unique index job_idempotency_unique on job (created_by, idempotency_key) where idempotency_key is not null`);
    // A model trains in one job at a time.
    this.addSql(`create unique index job_live_per_model on job (model_id) where state in ('queued', 'running')`);
    this.addSql(`create index job_queue_idx on job (queue_seq) where state = 'queued'`);
    this.addSql(`create index job_model_idx on job (model_id, created_at)`);
    this.addSql(`create index job_running_idx on job (id) where state = 'running'`);

    this.addSql(`create table job_trust (
      job_id uuid not null references job (id),
      trust_id uuid not null references trust (id),
      gpu_indices integer[] not null default '{}',
      updates integer not null default 0,
      missed integer not null default 0,
      last_miss_reason text,
      primary key (job_id, trust_id)
    )`);

    this.addSql(`create table job_round (
      job_id uuid not null references job (id),
      round integer not null,
      state text not null check (state in ('open', 'aggregating', 'aggregated', 'failed')),
      started_at timestamptz not null,
      deadline timestamptz not null,
      aggregated_at timestamptz,
      input_weights_artifact_id uuid references artifact (id),
      output_weights_artifact_id uuid references artifact (id),
      samples bigint not null default 0,
      primary key (job_id, round)
    )`);

    this.addSql(`create table job_task (
      task_id uuid primary key references task (id),
      job_id uuid not null references job (id),
      trust_id uuid not null,
      round integer not null,
      action text not null check (action in ('round', 'stop'))
    )`);
    this.addSql(`create index job_task_round_idx on job_task (job_id, round)`);

    this.addSql(`create table job_update (
      job_id uuid not null references job (id),
      round integer not null,
      trust_id uuid not null,
      task_id uuid not null,
      artifact_id uuid references artifact (id),
      samples bigint not null,
      received_at timestamptz not null,
      primary key (job_id, round, trust_id)
    )`);

    this.addSql(`create table job_metric (
      id bigserial primary key,
      job_id uuid not null references job (id),
      trust_id uuid not null,
      round integer not null,
      label text not null,
      value double precision not null,
      x_label text not null default '',
      x_value double precision not null default 0,
      seq bigint not null,
      recorded_at timestamptz not null,
      unique (job_id, trust_id, seq)
    )`);
    this.addSql(`create index job_metric_job_idx on job_metric (job_id, id)`);

    this.addSql(`create table job_event (
      id bigserial primary key,
      job_id uuid not null references job (id),
      kind text not null,
      trust_id uuid,
      round integer not null default 0,
      message text not null default '',
      details jsonb not null default '{}',
      at timestamptz not null,
      dedupe_key text,
      unique (job_id, dedupe_key)
    )`);
    this.addSql(`create index job_event_job_idx on job_event (job_id, id)`);
  }
}

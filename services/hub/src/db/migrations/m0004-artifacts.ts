import { Migration } from "@mikro-orm/migrations";

/** Artifacts (large payloads outside the trust link) and which trusts may download them besides the owner. */
export class M0004Artifacts extends Migration {
  override name = "m0004-artifacts";

  override up(): void {
    this.addSql(`
      create table artifact (
        id uuid primary key,
        owner_trust_id uuid references trust (id),
        purpose text not null,
        task_id text,
        size_bytes bigint not null check (size_bytes >= 0),
        sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
        stored_bytes bigint not null default 0 check (stored_bytes >= 0 and stored_bytes <= size_bytes),
        complete boolean not null default false,
        upload_session uuid,
        created_at timestamptz not null,
        completed_at timestamptz,
        constraint artifact_complete_means_stored check (not complete or (stored_bytes = size_bytes and completed_at is not null))
      )`);
    this.addSql(`create index artifact_owner_idx on artifact (owner_trust_id, created_at desc)`);
    this.addSql(`create index artifact_task_idx on artifact (task_id) where task_id is not null`);
    this.addSql(`
      create table artifact_access (
        artifact_id uuid not null references artifact (id) on delete cascade,
        trust_id uuid not null references trust (id),
        granted_at timestamptz not null,
        granted_by text not null,
        primary key (artifact_id, trust_id)
      )`);
    this.addSql(`create index artifact_access_trust_idx on artifact_access (trust_id)`);
  }
}

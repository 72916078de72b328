import { Migration } from "@mikro-orm/migrations";

/** Trust registry and the hash-chained audit log (append-only: updates and deletes are refused by trigger). */
export class M0001TrustsAndAudit extends Migration {
  override name = "m0001-trusts-and-audit";

  override up(): void {
    this.addSql(`
      create table trust (
        id uuid primary key,
        name text not null unique,
        code text not null unique,
        region text not null,
        key_id text not null unique,
        key_hash text not null,
        created_at timestamptz not null,
        disabled_at timestamptz,
        last_seen_at timestamptz,
        health jsonb,
        version integer not null default 1
      )`);
    this.addSql(`
      create table audit_entry (
        seq bigint primary key,
        at timestamptz not null,
        actor text not null,
        action text not null,
        target text not null,
        before_json text,
        after_json text,
        prev_hash text not null,
        hash text not null
      )`);
    this.addSql(`create index audit_entry_target_idx on audit_entry (target)`);
    this.addSql(`create index audit_entry_action_idx on audit_entry (action text_pattern_ops)`);
    this.addSql(`
      create function audit_entry_append_only() returns trigger language plpgsql as $$
      begin
        raise exception 'audit_entry is append-only';
      end $$`);
    this.addSql(`
      create trigger audit_entry_no_update before update or delete on audit_entry
      for each row execute function audit_entry_append_only()`);
  }
}

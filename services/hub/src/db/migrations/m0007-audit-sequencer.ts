import { Migration } from "@mikro-orm/migrations";

/**
 * The audit log is appended without a lock and chained afterwards by the sequencer (audit/sequencer.ts).
 * Entries get an insertion id, the new primary key; seq, prev_hash and hash stay null until the entry is
 * chained. Existing entries are all chained: their id is their seq, so they keep their order.
 */
export class M0007AuditSequencer extends Migration {
  override name = "m0007-audit-sequencer";

  override up(): void {
    // Filling the new column is an UPDATE, which the append-only trigger refuses. The migration holds an
    // exclusive lock on the table from its first ALTER to its commit, so nobody sees the trigger off.
    this.addSql(`alter table audit_entry disable trigger audit_entry_no_update`);
    this.addSql(`alter table audit_entry add column id bigint`);
    this.addSql(`update audit_entry set id = seq`);
    this.addSql(`alter table audit_entry enable trigger audit_entry_no_update`);
    this.addSql(`alter table audit_entry alter column id set not null`);
    this.addSql(`alter table audit_entry alter column id add generated always as identity`);
    this.addSql(`select setval(pg_get_serial_sequence('audit_entry', 'id'), (select coalesce(max(id), 0) + 1 from audit_entry), false)`);
    this.addSql(`alter table audit_entry drop constraint audit_entry_pkey`);
    this.addSql(`alter table audit_entry add primary key (id)`);
    this.addSql(`alter table audit_entry alter column seq drop not null, alter column prev_hash drop not null, alter column hash drop not null`);
    this.addSql(`alter table audit_entry add constraint audit_entry_seq_key unique (seq)`);
    this.addSql(`
      alter table audit_entry add constraint audit_entry_chained_whole
      check ((seq is null) = (prev_hash is null) and (seq is null) = (hash is null))`);
    // The sequencer's work list.
    this.addSql(`create index audit_entry_unchained_idx on audit_entry (id) where seq is null`);
    // The one update allowed: chaining an unchained entry, leaving its content as it was.
    this.addSql(`
      create or replace function audit_entry_append_only() returns trigger language plpgsql as $$
      begin
        if tg_op = 'UPDATE'
          and old.seq is null and new.seq is not null
          and new.id = old.id
          and new.at = old.at
          and new.actor = old.actor
          and new.action = old.action
          and new.target = old.target
          and new.before_json is not distinct from old.before_json
          and new.after_json is not distinct from old.after_json
        then
          return new;
        end if;
        raise exception 'audit_entry is append-only';
      end $$`);
  }
}

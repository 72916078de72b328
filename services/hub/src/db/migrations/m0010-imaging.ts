import { Migration } from "@mikro-orm/migrations";

/**
 * Imaging at the trusts: the NIfTI choice a project's later imports use, and one row per project and
 * trust saying where the trust's import of the frozen cohort's studies stands (as counts only) or the
 * deletion of its research copies. A trust's approval can now be withdrawn.
 */
export class M0010Imaging extends Migration {
  override name = "m0010-imaging";

  override up(): void {
    this.addSql(`alter table project add column imaging_convert_to_nifti boolean not null default false`);
    this.addSql(`alter table project_trust drop constraint project_trust_state_check`);
    this.addSql(`alter table project_trust add constraint project_trust_state_check check (state in ('pending', 'approved', 'declined', 'withdrawn'))`);
    this.addSql(`
      create table project_imaging (
        project_id uuid not null references project (id),
        trust_id uuid not null references trust (id),
        state text not null check (state in ('importing', 'done', 'failed', 'deleting', 'deleted')),
        import_task_id uuid references task (id),
        delete_task_id uuid references task (id),
        convert_to_nifti boolean not null,
        counts jsonb,
        counts_changed_at timestamptz,
        error text,
        delete_reason text,
        updated_at timestamptz not null,
        primary key (project_id, trust_id),
        check (state <> 'importing' or import_task_id is not null),
        check (state <> 'deleting' or delete_reason is not null)
      )`);
    this.addSql(`create unique index project_imaging_import_task_idx on project_imaging (import_task_id)`);
    this.addSql(`create unique index project_imaging_delete_task_idx on project_imaging (delete_task_id)`);
    this.addSql(`create index project_imaging_open_idx on project_imaging (state) where state in ('importing', 'deleting')`);
  }
}

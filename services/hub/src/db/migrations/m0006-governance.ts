import { Migration } from "@mikro-orm/migrations";

/** Deployment mode: one row, the switch that pauses new work before an upgrade. */
export class M0006Governance extends Migration {
  override name = "m0006-governance";

  override up(): void {
    this.addSql(`
      create table deployment_mode (
        id integer primary key check (id = 1),
        enabled boolean not null,
        changed_at timestamptz not null,
        changed_by text not null
      )`);
    this.addSql(`insert into deployment_mode (id, enabled, changed_at, changed_by) values (1, false, now(), 'system')`);
  }
}

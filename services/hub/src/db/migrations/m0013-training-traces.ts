import { Migration } from "@mikro-orm/migrations";

/**
 * A job keeps the trace context of the call that created it, and each round the context of the span
 * that opened it: a job started later by the scheduler, and a round averaged by another replica or after
 * a restart, still continue their traces.
 */
export class M0013TrainingTraces extends Migration {
  override name = "m0013-training-traces";

  override up(): void {
    this.addSql(`alter table job add column trace_context jsonb not null default '{}'`);
    this.addSql(`alter table job_round add column trace_context jsonb not null default '{}'`);
  }
}

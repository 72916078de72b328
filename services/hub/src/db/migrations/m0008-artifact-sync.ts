import { Migration } from "@mikro-orm/migrations";

/**
 * Artifacts are made durable after they are answered complete (artifacts/durability.ts): `synced_at`
 * records that the file reached the disk. A checksum may now arrive at the end of an upload, so it is
 * unknown until then; a complete artifact always has one.
 */
export class M0008ArtifactSync extends Migration {
  override name = "m0008-artifact-sync";

  override up(): void {
    this.addSql(`alter table artifact add column synced_at timestamptz`);
    // Complete artifacts of earlier hubs were fsynced before they were recorded complete.
    this.addSql(`update artifact set synced_at = completed_at where complete`);
    this.addSql(`alter table artifact alter column sha256 drop not null`);
    this.addSql(`alter table artifact add constraint artifact_complete_has_sha256 check (not complete or sha256 is not null)`);
    this.addSql(`alter table artifact add constraint artifact_synced_means_complete check (synced_at is null or complete)`);
    // The hub's start looks for complete artifacts that never reached the disk.
    this.addSql(`create index artifact_unsynced_idx on artifact (id) where complete and synced_at is null`);
  }
}

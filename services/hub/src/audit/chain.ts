import { createHash } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";

export const GENESIS_HASH = "0".repeat(64);

/** Sent by every append, delivered when it commits: the sequencer chains what was appended. */
export const AUDIT_APPENDED_CHANNEL = "flip_audit_appended";

export interface AuditRecord {
  /** Who acted: "user:<id>", "bootstrap-admin", "system", "anonymous" or "trust:<code>". */
  actor: string;
  /** e.g. "trust.registered". */
  action: string;
  /** e.g. "trust:<id>". */
  target: string;
  before?: unknown;
  after?: unknown;
}

interface HashedContent {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  beforeJson: string | null;
  afterJson: string | null;
}

export function entryHash(prevHash: string, c: HashedContent): string {
  const canonical = JSON.stringify([c.seq, c.at, c.actor, c.action, c.target, c.beforeJson, c.afterJson]);
  return createHash("sha256").update(prevHash).update("\n").update(canonical).digest("hex");
}

/** The content columns of an audit_entry row, as raw SQL returns them. */
export interface StoredContent {
  at: Date | string;
  actor: string;
  action: string;
  target: string;
  before_json: string | null;
  after_json: string | null;
}

/** The hash of a stored entry at position `seq` after `prevHash`. */
export function storedEntryHash(prevHash: string, seq: number, r: StoredContent): string {
  return entryHash(prevHash, { seq, at: new Date(r.at).toISOString(), actor: r.actor, action: r.action, target: r.target, beforeJson: r.before_json, afterJson: r.after_json });
}

/**
 * The append as one INSERT, for a statement that also makes the change it records (one round trip for
 * both; the sequencer's wake-up is in its RETURNING, so the statement must read it, e.g. `from audit`
 * when used as a CTE named audit). Most callers want `appendAudit`.
 */
export function auditAppendSql(record: AuditRecord): { sql: string; params: unknown[] } {
  return {
    sql:
      "insert into audit_entry (at, actor, action, target, before_json, after_json) values (?, ?, ?, ?, ?, ?) " +
      `returning id, pg_notify('${AUDIT_APPENDED_CHANNEL}', '')`,
    params: [
      // Milliseconds, as JavaScript reads them back: the hash is computed over the stored value.
      new Date(),
      record.actor,
      record.action,
      record.target,
      record.before === undefined ? null : JSON.stringify(record.before),
      record.after === undefined ? null : JSON.stringify(record.after),
    ],
  };
}

/**
 * Appends an entry. Must run inside the transaction that makes the change it records, so the change
 * and its audit entry commit (or roll back) together. Takes no lock, so appenders never wait for each
 * other: the entry is stored unchained and the sequencer (sequencer.ts) gives it its place in the hash
 * chain within milliseconds of the commit. Until then only the append-only trigger protects it.
 */
export async function appendAudit(em: EntityManager, record: AuditRecord): Promise<void> {
  const { sql, params } = auditAppendSql(record);
  await em.execute(sql, params);
}

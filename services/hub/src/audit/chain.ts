import { createHash } from "node:crypto";
import type { EntityManager } from "@mikro-orm/postgresql";
import { AuditEntry } from "./entities.js";

/** The lock every appender takes so entries get consecutive sequence numbers and hashes. */
const AUDIT_LOCK = 7_770_002;
export const GENESIS_HASH = "0".repeat(64);

export interface AuditRecord {
  /** Who acted: a user id, "bootstrap-admin", "system" or "trust:<code>". */
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

/**
 * Appends an entry. Must run inside the transaction that makes the change it records, so the change
 * and its audit entry commit (or roll back) together.
 */
export async function appendAudit(em: EntityManager, record: AuditRecord): Promise<AuditEntry> {
  await em.execute("select pg_advisory_xact_lock(?)", [AUDIT_LOCK]);
  const [last] = await em.execute<{ seq: string; hash: string }[]>("select seq, hash from audit_entry order by seq desc limit 1");
  const seq = last ? Number(last.seq) + 1 : 1;
  const prevHash = last ? last.hash : GENESIS_HASH;
  const at = new Date();
  const content: HashedContent = {
    seq,
    at: at.toISOString(),
    actor: record.actor,
    action: record.action,
    target: record.target,
    beforeJson: record.before === undefined ? null : JSON.stringify(record.before),
    afterJson: record.after === undefined ? null : JSON.stringify(record.after),
  };
  const entry = em.create(AuditEntry, { ...content, at, prevHash, hash: entryHash(prevHash, content) });
  em.persist(entry);
  await em.flush();
  return entry;
}

export interface ChainVerification {
  ok: boolean;
  entriesChecked: number;
  firstBrokenSeq?: number;
  problem?: string;
}

/** Recomputes every hash in order and reports the first entry that does not match. */
export async function verifyAuditChain(em: EntityManager, batchSize = 1000): Promise<ChainVerification> {
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let checked = 0;
  for (;;) {
    const rows = await em.execute<
      { seq: string; at: Date; actor: string; action: string; target: string; before_json: string | null; after_json: string | null; prev_hash: string; hash: string }[]
    >("select * from audit_entry where seq >= ? order by seq limit ?", [expectedSeq, batchSize]);
    if (rows.length === 0) return { ok: true, entriesChecked: checked };
    for (const r of rows) {
      const seq = Number(r.seq);
      if (seq !== expectedSeq) return { ok: false, entriesChecked: checked, firstBrokenSeq: expectedSeq, problem: `entry ${expectedSeq} is missing` };
      if (r.prev_hash !== prevHash) return { ok: false, entriesChecked: checked, firstBrokenSeq: seq, problem: `entry ${seq} does not point at entry ${seq - 1}` };
      const recomputed = entryHash(prevHash, {
        seq,
        at: new Date(r.at).toISOString(),
        actor: r.actor,
        action: r.action,
        target: r.target,
        beforeJson: r.before_json,
        afterJson: r.after_json,
      });
      if (recomputed !== r.hash) return { ok: false, entriesChecked: checked, firstBrokenSeq: seq, problem: `entry ${seq} was altered (hash mismatch)` };
      prevHash = r.hash;
      expectedSeq++;
      checked++;
    }
  }
}

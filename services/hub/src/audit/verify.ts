import type { EntityManager } from "@mikro-orm/postgresql";
import { GENESIS_HASH, storedEntryHash, type StoredContent } from "./chain.js";
import { chainAppendedEntries } from "./sequencer.js";

export interface ChainVerification {
  ok: boolean;
  entriesChecked: number;
  firstBrokenSeq?: number;
  problem?: string;
}

/**
 * Chains whatever was appended before the call, then recomputes every hash in chain order and reports
 * the first entry that is missing, does not point at its predecessor, or does not match its content.
 */
export async function verifyAuditChain(em: EntityManager, batchSize = 1000): Promise<ChainVerification> {
  await chainAppendedEntries(em);
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let checked = 0;
  for (;;) {
    const rows = await em.execute<(StoredContent & { seq: string; prev_hash: string; hash: string })[]>(
      "select seq, at, actor, action, target, before_json, after_json, prev_hash, hash from audit_entry where seq >= ? order by seq limit ?",
      [expectedSeq, batchSize],
    );
    if (rows.length === 0) return { ok: true, entriesChecked: checked };
    for (const r of rows) {
      const seq = Number(r.seq);
      if (seq !== expectedSeq) return { ok: false, entriesChecked: checked, firstBrokenSeq: expectedSeq, problem: `entry ${expectedSeq} is missing` };
      if (r.prev_hash !== prevHash) return { ok: false, entriesChecked: checked, firstBrokenSeq: seq, problem: `entry ${seq} does not point at entry ${seq - 1}` };
      if (storedEntryHash(prevHash, seq, r) !== r.hash) return { ok: false, entriesChecked: checked, firstBrokenSeq: seq, problem: `entry ${seq} was altered (hash mismatch)` };
      prevHash = r.hash;
      expectedSeq++;
      checked++;
    }
  }
}

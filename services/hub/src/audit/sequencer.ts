import type { EntityManager } from "@mikro-orm/postgresql";
import type { Logger } from "@flip/shared/logging/logger.js";
import { PeriodicJob } from "@flip/shared/process/periodic-job.js";
import type { Database } from "../db/database.js";
import { AUDIT_APPENDED_CHANNEL, GENESIS_HASH, storedEntryHash, type StoredContent } from "./chain.js";

/**
 * Only the holder chains, on whichever replica: every replica runs a sequencer. The same number the
 * appenders locked before the sequencer existed, so a chain written under either scheme stays one chain.
 */
const CHAIN_LOCK = 7_770_002;
const BATCH_SIZE = 1_000;
/** The sequencer reacts to appends; the timer only catches a missed notification or a pass that died. */
const SAFETY_NET_INTERVAL_MS = 5_000;

/**
 * Chains every entry committed before the call, a batch per transaction under the chain lock (waiting for
 * it), and returns how many it chained. Entries get their place in the order the sequencer sees them
 * committed, which can differ from their insertion ids (a transaction that appended first may commit
 * last); either order is a valid chain, and the chain is what `verifyAuditChain` checks.
 */
export async function chainAppendedEntries(em: EntityManager): Promise<number> {
  let total = 0;
  for (;;) {
    const chained = await em.transactional((tx) => chainBatch(tx));
    total += chained;
    if (chained < BATCH_SIZE) return total;
  }
}

async function chainBatch(tx: EntityManager): Promise<number> {
  // The lock is its own statement: a statement's snapshot is taken when it starts, and the reads below
  // must see what the previous holder committed.
  await tx.execute("select pg_advisory_xact_lock(?)", [CHAIN_LOCK]);
  const [last] = await tx.execute<{ seq: string; hash: string }[]>("select seq, hash from audit_entry where seq is not null order by seq desc limit 1");
  const rows = await tx.execute<(StoredContent & { id: string })[]>(
    "select id, at, actor, action, target, before_json, after_json from audit_entry where seq is null order by id limit ? for update",
    [BATCH_SIZE],
  );
  if (rows.length === 0) return 0;
  let seq = last ? Number(last.seq) : 0;
  let prevHash = last ? last.hash : GENESIS_HASH;
  const links = rows.map((r) => {
    seq++;
    const link = { id: r.id, seq, prev_hash: prevHash, hash: storedEntryHash(prevHash, seq, r) };
    prevHash = link.hash;
    return link;
  });
  await tx.execute(
    `update audit_entry a set seq = l.seq, prev_hash = l.prev_hash, hash = l.hash
     from jsonb_to_recordset(?::jsonb) as l(id bigint, seq bigint, prev_hash text, hash text)
     where a.id = l.id`,
    [JSON.stringify(links)],
  );
  return rows.length;
}

/**
 * Chains appended entries in the background: when an append commits (its notification; a burst of them
 * coalesces into one pass in flight and at most one more after it), at start, after the notification
 * connection was lost, and on a slow timer as a safety net.
 */
export class AuditSequencer {
  private readonly timer: PeriodicJob;
  private draining: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private readonly unsubscribers: (() => void)[] = [];

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
    intervalMs = SAFETY_NET_INTERVAL_MS,
  ) {
    this.timer = new PeriodicJob("audit-sequencer", intervalMs, () => this.drain(), log);
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.unsubscribers.push(await this.db.notifier.subscribe(AUDIT_APPENDED_CHANNEL, () => this.kick()), this.db.notifier.onReconnect(() => this.kick()));
    this.timer.start();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const u of this.unsubscribers.splice(0)) u();
    await this.timer.stop();
    await this.draining;
  }

  private kick(): void {
    if (this.stopped) return;
    this.drain().catch((err: unknown) => this.log.warn({ err }, "chaining audit entries failed; retrying on the next append or tick"));
  }

  /** Runs passes until none was asked for during the last one; callers share the run in flight. */
  private drain(): Promise<void> {
    if (this.draining) {
      this.again = true;
      return this.draining;
    }
    const run = async () => {
      try {
        do {
          this.again = false;
          const chained = await chainAppendedEntries(this.db.em());
          if (chained > 0) this.log.debug({ chained }, "audit entries chained");
        } while (this.again && !this.stopped);
      } finally {
        this.draining = undefined;
      }
    };
    this.draining = run();
    return this.draining;
  }
}

import type { EntityManager } from "@mikro-orm/postgresql";

/** How often each hub replica sweeps; the sweep is idempotent, so replicas may overlap. */
export const SESSION_SWEEP_INTERVAL_MS = 3_600_000;

/**
 * Deletes sessions that ended (expired, or revoked by logout, reuse detection or an admin) more than
 * `retentionSeconds` ago, and with them their refresh tokens (the foreign key cascades). Open sessions keep
 * every refresh token, rotated ones included: a rotated token presented again is how a copied token is
 * caught. Returns how many sessions were deleted. Who signed in when stays in the audit log.
 */
export async function sweepEndedSessions(em: EntityManager, retentionSeconds: number): Promise<number> {
  const rows = await em.execute<unknown[]>(
    // least() ignores a null revoked_at: a session ended at whichever came first.
    "delete from user_session where least(revoked_at, expires_at) < now() - make_interval(secs => ?) returning id",
    [retentionSeconds],
  );
  return rows.length;
}

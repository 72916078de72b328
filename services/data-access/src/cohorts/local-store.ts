/** The trust-local schema `flip_local`: in the OMOP database, out of the reader role's reach. */
import type pg from "pg";
import { DatabaseUnavailableError, isConnectionFailure } from "../execution/errors.js";

export const LOCAL_SCHEMA = "flip_local";

/** Runs owner-side work on one pooled client; a lost database becomes DatabaseUnavailableError. */
export async function ownerWork<T>(owner: pg.Pool, work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await owner.connect();
  } catch (e) {
    throw new DatabaseUnavailableError({ cause: e });
  }
  let broken: Error | undefined;
  try {
    return await work(client);
  } catch (e) {
    if (isConnectionFailure(e)) {
      broken = e instanceof Error ? e : new Error(String(e));
      throw new DatabaseUnavailableError({ cause: e });
    }
    throw e;
  } finally {
    client.release(broken);
  }
}

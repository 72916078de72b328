import { create } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { PersonRefSchema, type PersonRef } from "@flip/gen/flip/hub/v1/people_pb.js";
import { isUuid } from "../domain/ids.js";

/** The users behind a set of ids and actors, loaded together (see loadPeople). */
export interface People {
  /** The person behind a user id or a "user:<id>" actor; undefined for any other actor or a user that is gone. */
  of(idOrActor: string | null | undefined): PersonRef | undefined;
}

const USER_ACTOR = "user:";

/** The user id a raw id or a "user:<id>" actor names, when it is a UUID; anything else names no user. */
function userIdOf(ref: string | null | undefined): string | undefined {
  if (!ref) return undefined;
  const id = ref.startsWith(USER_ACTOR) ? ref.slice(USER_ACTOR.length) : ref;
  return isUuid(id) ? id.toLowerCase() : undefined;
}

/**
 * Loads the users that `refs` name (user ids, or actors such as "user:<id>", "bootstrap-admin", "system")
 * in one query, or none when no ref names a user, so a page of anything costs one lookup of its people.
 */
export async function loadPeople(em: EntityManager, refs: Iterable<string | null | undefined>): Promise<People> {
  const ids = new Set<string>();
  for (const ref of refs) {
    const id = userIdOf(ref);
    if (id) ids.add(id);
  }
  // Only UUIDs reach the array literal (checked above), so it needs no escaping.
  const rows = ids.size
    ? await em.execute<{ id: string; email: string; name: string }[]>("select id, email, name from app_user where id = any(?::uuid[])", [`{${[...ids].join(",")}}`])
    : [];
  const byId = new Map(rows.map((r) => [r.id, r]));
  return {
    of(idOrActor) {
      const row = byId.get(userIdOf(idOrActor) ?? "");
      return row ? create(PersonRefSchema, { userId: row.id, email: row.email, name: row.name }) : undefined;
    },
  };
}

import type { MigrationObject } from "@mikro-orm/core";
import { M0001TrustsAndAudit } from "./m0001-trusts-and-audit.js";
import { M0002Tasks } from "./m0002-tasks.js";

/** Every hub migration, in order. Append new ones; never edit one that has shipped. */
export const migrations: MigrationObject[] = [
  { name: "m0001-trusts-and-audit", class: M0001TrustsAndAudit },
  { name: "m0002-tasks", class: M0002Tasks },
];

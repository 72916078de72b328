/**
 * Loads a synthetic OMOP trust:
 *   node --import tsx tools/src/omop/main.ts --database-url postgres://… --persons 5000 --seed 1 --profile north
 * The generator is data-access's test support (services/data-access/src/testing/omop), so that package's
 * tests need nothing from tools, and tools depends on data-access only.
 */
import { parseArgs } from "node:util";
import { generateOmop } from "@flip/data-access/testing/omop/generate.js";
import { PROFILES } from "@flip/data-access/testing/omop/profiles.js";

const usage = `usage: main.ts --database-url URL [--persons N] [--seed N] [--profile ${Object.keys(PROFILES).join("|")}]`;

function integer(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} must be an integer of at least ${min}, got ${JSON.stringify(raw)}\n${usage}\n`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    "database-url": { type: "string" },
    persons: { type: "string", default: "5000" },
    seed: { type: "string", default: "1" },
    profile: { type: "string", default: "central" },
    help: { type: "boolean", default: false },
  },
});
if (values.help || !values["database-url"]) {
  process.stderr.write(`${usage}\n`);
  process.exit(values.help ? 0 : 2);
}
if (!(values.profile in PROFILES)) {
  process.stderr.write(`--profile must be one of ${Object.keys(PROFILES).join(", ")}, got ${JSON.stringify(values.profile)}\n`);
  process.exit(2);
}
const summary = await generateOmop(values["database-url"], {
  persons: integer("persons", values.persons, 0),
  seed: integer("seed", values.seed, 0),
  profile: values.profile,
});
process.stdout.write(`${JSON.stringify(summary)}\n`);

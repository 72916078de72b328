import { readFileSync } from "node:fs";
import * as path from "node:path";
import test from "ava";
import { profileMarkdownTable } from "./profile.js";

test("the README's de-identification table is the profile the service applies", (t) => {
  const readme = readFileSync(path.resolve(import.meta.dirname, "../../README.md"), "utf8");
  t.true(
    readme.includes(profileMarkdownTable()),
    "services/imaging/README.md is out of date: paste the output of `node --import tsx services/imaging/src/dicom/print-profile.ts` under 'De-identification profile'",
  );
});

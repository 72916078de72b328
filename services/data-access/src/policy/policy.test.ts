import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import test from "ava";
import { ConfigError } from "@flip/shared/config/settings.js";
import { loadPolicyFile } from "./load-policy.js";
import { decide, DEFAULT_QUERY_BUDGET_PER_DAY, effectiveThreshold, PERMIT_ALL, PolicyDeniedError, requirePermit } from "./policy.js";

const dir = mkdtempSync(path.join(tmpdir(), "flip-policy-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function policyFile(content: unknown): string {
  const file = path.join(dir, `policy-${++files}.json`);
  writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
  return file;
}

const example = {
  min_cohort_size: 15,
  rules: [
    { id: "no-rows-for-p1", action: "cohort.rows", effect: "deny", projects: ["p1"] },
    { id: "strict-freeze", action: "cohort.freeze", effect: "permit", projects: ["*"], min_cohort_size: 25 },
    { id: "no-accessions", action: "cohort.accessions", effect: "deny", projects: ["*"] },
  ],
};

test("without a policy file every action is permitted at the trust's own threshold", (t) => {
  const d = decide(PERMIT_ALL, "cohort.rows", "any-project");
  t.deepEqual(d, { effect: "permit", ruleId: "default", minCohortSize: 0 });
  t.is(effectiveThreshold(10, d), 10);
});

test("the first matching rule decides, and a deny names its rule for the logs only", (t) => {
  const policy = loadPolicyFile(policyFile(example));
  t.is(decide(policy, "cohort.rows", "p1").ruleId, "no-rows-for-p1");
  t.is(decide(policy, "cohort.rows", "p2").effect, "permit");
  t.is(decide(policy, "cohort.accessions", "p2").effect, "deny");
  const e = t.throws(() => requirePermit(policy, "cohort.rows", "p1"), { instanceOf: PolicyDeniedError });
  t.is(e?.ruleId, "no-rows-for-p1");
  t.false(e?.message.includes("no-rows-for-p1"));
});

test("the policy can raise the threshold but never lower it", (t) => {
  const policy = loadPolicyFile(policyFile(example));
  t.is(effectiveThreshold(10, decide(policy, "cohort.statistics", "p1")), 15);
  t.is(effectiveThreshold(10, decide(policy, "cohort.freeze", "p1")), 25);
  t.is(effectiveThreshold(30, decide(policy, "cohort.freeze", "p1")), 30);
  const lenient = loadPolicyFile(policyFile({ min_cohort_size: 2 }));
  t.is(effectiveThreshold(10, decide(lenient, "cohort.statistics", "p1")), 10);
});

test("the hub's min_count can raise the threshold but not lower it", (t) => {
  const d = decide(PERMIT_ALL, "cohort.statistics", "p1");
  t.is(effectiveThreshold(10, d, 20), 20);
  t.is(effectiveThreshold(10, d, 3), 10);
});

test("the loaded policy carries the file's SHA-256 for the start-up log", (t) => {
  const text = JSON.stringify(example);
  const file = policyFile(text);
  t.deepEqual(loadPolicyFile(file).source, { path: file, sha256: createHash("sha256").update(text).digest("hex") });
});

test("the policy sets each project's daily query budget, with a default when it does not", (t) => {
  t.is(loadPolicyFile(policyFile({ query_budget: { per_project_per_day: 25 } })).queryBudgetPerDay, 25);
  t.is(loadPolicyFile(policyFile({})).queryBudgetPerDay, DEFAULT_QUERY_BUDGET_PER_DAY);
  t.is(PERMIT_ALL.queryBudgetPerDay, DEFAULT_QUERY_BUDGET_PER_DAY);
});

test("an unknown key, action or effect in the policy file stops start-up with one line", (t) => {
  const cases: [unknown, RegExp][] = [
    [{ ...example, min_cohrt_size: 5 }, /unknown key "min_cohrt_size"/],
    [{ rules: [{ id: "x", action: "cohort.dataframe", effect: "deny", projects: ["*"] }] }, /rules\[0\]\.action "cohort\.dataframe" is not one of/],
    [{ rules: [{ id: "x", action: "cohort.rows", effect: "allow", projects: ["*"] }] }, /rules\[0\]\.effect "allow"/],
    [{ rules: [{ id: "x", action: "cohort.rows", effect: "deny", projects: ["*"], note: "hi" }] }, /rules\[0\] has unknown key "note"/],
    [{ rules: [{ id: "x", action: "cohort.rows", effect: "deny", projects: [] }] }, /projects must be a non-empty array/],
    [{ rules: [{ id: "x", action: "cohort.rows", effect: "deny", projects: ["*"] }, { id: "x", action: "cohort.freeze", effect: "deny", projects: ["*"] }] }, /used twice/],
    [{ min_cohort_size: 0 }, /min_cohort_size must be an integer/],
    [{ query_budget: { per_project_per_day: 0 } }, /query_budget\.per_project_per_day must be an integer from 1/],
    [{ query_budget: { per_day: 5 } }, /query_budget has unknown key "per_day"/],
    [{ query_budget: 5 }, /query_budget must be an object/],
    ["{ not json", /not JSON/],
    [[1, 2], /top level must be an object/],
  ];
  for (const [content, message] of cases) {
    const e = t.throws(() => loadPolicyFile(policyFile(content)), { instanceOf: ConfigError });
    t.regex(e?.message ?? "", message);
    t.false(e?.message.includes("\n"), "the error is a single line");
    t.is(e?.setting, "FLIP_DATA_ACCESS_POLICY_FILE");
  }
  t.throws(() => loadPolicyFile(path.join(dir, "missing.json")), { instanceOf: ConfigError, message: /a readable JSON policy file/ });
});

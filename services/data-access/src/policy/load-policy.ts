/**
 * Reads the operator's policy file (JSON). Anything unexpected, an unknown key or action included, stops
 * the service at start-up: a typo in a deny rule must not silently permit.
 *
 *   {
 *     "min_cohort_size": 15,
 *     "query_budget": { "per_project_per_day": 100 },
 *     "rules": [
 *       { "id": "no-rows-for-p1", "action": "cohort.rows", "effect": "deny", "projects": ["p1"] },
 *       { "id": "strict-freeze", "action": "cohort.freeze", "effect": "permit", "projects": ["*"], "min_cohort_size": 25 }
 *     ]
 *   }
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError } from "@flip/shared/config/settings.js";
import { DEFAULT_QUERY_BUDGET_PER_DAY, POLICY_ACTIONS, type PolicyAction, type PolicyEffect, type PolicyRule, type TrustPolicy } from "./policy.js";

export const POLICY_SETTING = "FLIP_DATA_ACCESS_POLICY_FILE";

const TOP_KEYS = new Set(["min_cohort_size", "query_budget", "rules"]);
const BUDGET_KEYS = new Set(["per_project_per_day"]);
const MAX_QUERY_BUDGET = 100_000;
const RULE_KEYS = new Set(["id", "action", "effect", "projects", "min_cohort_size"]);
const EFFECTS: readonly PolicyEffect[] = ["permit", "deny"];
const MAX_COHORT_SIZE = 1_000_000;

export function loadPolicyFile(path: string): TrustPolicy {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    throw new ConfigError(POLICY_SETTING, "a readable JSON policy file", path);
  }
  const invalid = (problem: string) => new ConfigError(POLICY_SETTING, `a valid policy file (${problem})`, path);
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    throw invalid(`not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isObject(doc)) throw invalid("the top level must be an object");
  for (const key of Object.keys(doc)) {
    if (!TOP_KEYS.has(key)) throw invalid(`unknown key ${JSON.stringify(key)}; allowed: ${[...TOP_KEYS].join(", ")}`);
  }
  const minCohortSize = doc.min_cohort_size === undefined ? 0 : cohortSize(doc.min_cohort_size, "min_cohort_size", invalid);
  const queryBudgetPerDay = doc.query_budget === undefined ? DEFAULT_QUERY_BUDGET_PER_DAY : parseBudget(doc.query_budget, invalid);
  if (doc.rules !== undefined && !Array.isArray(doc.rules)) throw invalid("rules must be an array");
  const rules = ((doc.rules as unknown[] | undefined) ?? []).map((r, i) => parseRule(r, `rules[${i}]`, invalid));
  const ids = new Set<string>();
  for (const r of rules) {
    if (ids.has(r.id)) throw invalid(`rule id ${JSON.stringify(r.id)} is used twice`);
    ids.add(r.id);
  }
  return { minCohortSize, queryBudgetPerDay, rules, source: { path, sha256: createHash("sha256").update(bytes).digest("hex") } };
}

function parseRule(raw: unknown, at: string, invalid: (problem: string) => ConfigError): PolicyRule {
  if (!isObject(raw)) throw invalid(`${at} must be an object`);
  for (const key of Object.keys(raw)) {
    if (!RULE_KEYS.has(key)) throw invalid(`${at} has unknown key ${JSON.stringify(key)}; allowed: ${[...RULE_KEYS].join(", ")}`);
  }
  if (typeof raw.id !== "string" || raw.id.trim() === "") throw invalid(`${at}.id must be a non-empty string`);
  if (!POLICY_ACTIONS.includes(raw.action as PolicyAction)) {
    throw invalid(`${at}.action ${JSON.stringify(raw.action)} is not one of ${POLICY_ACTIONS.join(", ")}`);
  }
  if (!EFFECTS.includes(raw.effect as PolicyEffect)) throw invalid(`${at}.effect ${JSON.stringify(raw.effect)} is not one of ${EFFECTS.join(", ")}`);
  const projects = raw.projects;
  if (!Array.isArray(projects) || projects.length === 0 || !projects.every((p) => typeof p === "string" && p !== "")) {
    throw invalid(`${at}.projects must be a non-empty array of project ids, or ["*"]`);
  }
  const rule: PolicyRule = { id: raw.id, action: raw.action as PolicyAction, effect: raw.effect as PolicyEffect, projects: projects as string[] };
  if (raw.min_cohort_size !== undefined) rule.minCohortSize = cohortSize(raw.min_cohort_size, `${at}.min_cohort_size`, invalid);
  return rule;
}

function parseBudget(raw: unknown, invalid: (problem: string) => ConfigError): number {
  if (!isObject(raw)) throw invalid('query_budget must be an object, e.g. { "per_project_per_day": 100 }');
  for (const key of Object.keys(raw)) {
    if (!BUDGET_KEYS.has(key)) throw invalid(`query_budget has unknown key ${JSON.stringify(key)}; allowed: ${[...BUDGET_KEYS].join(", ")}`);
  }
  const n = raw.per_project_per_day;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > MAX_QUERY_BUDGET) {
    throw invalid(`query_budget.per_project_per_day must be an integer from 1 to ${MAX_QUERY_BUDGET}`);
  }
  return n;
}

function cohortSize(value: unknown, at: string, invalid: (problem: string) => ConfigError): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_COHORT_SIZE) {
    throw invalid(`${at} must be an integer from 1 to ${MAX_COHORT_SIZE}`);
  }
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

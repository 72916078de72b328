/**
 * The trust's governance policy: which projects may do what with the trust's data, and how large a
 * group must be before a count about it leaves. Owned by the trust's operators; the hub never sets it.
 */
export const POLICY_ACTIONS = ["cohort.statistics", "cohort.freeze", "cohort.rows", "cohort.accessions"] as const;
export type PolicyAction = (typeof POLICY_ACTIONS)[number];
export type PolicyEffect = "permit" | "deny";

export interface PolicyRule {
  id: string;
  action: PolicyAction;
  effect: PolicyEffect;
  /** Project ids, or `*` for every project. */
  projects: readonly string[];
  /** Raises the threshold for what this rule permits; never lowers it. */
  minCohortSize?: number;
}

/** Cohort statistics queries one project may run per UTC day when the policy does not say. */
export const DEFAULT_QUERY_BUDGET_PER_DAY = 200;

export interface TrustPolicy {
  /** Raises the trust-wide threshold; never lowers it. */
  minCohortSize: number;
  /** Cohort statistics queries one project may run per UTC day; repeated probing needs many queries. */
  queryBudgetPerDay: number;
  /** Evaluated in order; the first rule matching the action and project decides. */
  rules: readonly PolicyRule[];
  /** Where the policy came from and its SHA-256, for the start-up log; undefined for the built-in default. */
  source?: { path: string; sha256: string };
}

/** No file: every action is permitted and the trust's own threshold applies. */
export const PERMIT_ALL: TrustPolicy = { minCohortSize: 0, queryBudgetPerDay: DEFAULT_QUERY_BUDGET_PER_DAY, rules: [] };

export interface PolicyDecision {
  effect: PolicyEffect;
  /** The deciding rule, or `default`; for logs only, never sent to callers. */
  ruleId: string;
  /** The policy's floor for this decision (0 when it sets none). */
  minCohortSize: number;
}

/** The trust's policy refused an action for a project. The message is fixed: rule ids stay in the logs. */
export class PolicyDeniedError extends Error {
  override readonly name = "PolicyDeniedError";
  constructor(
    readonly action: PolicyAction,
    readonly projectId: string,
    readonly ruleId: string,
  ) {
    super(`the trust's policy does not permit ${action} for this project`);
  }
}

export function decide(policy: TrustPolicy, action: PolicyAction, projectId: string): PolicyDecision {
  const rule = policy.rules.find((r) => r.action === action && (r.projects.includes("*") || r.projects.includes(projectId)));
  if (!rule) return { effect: "permit", ruleId: "default", minCohortSize: policy.minCohortSize };
  return { effect: rule.effect, ruleId: rule.id, minCohortSize: Math.max(policy.minCohortSize, rule.minCohortSize ?? 0) };
}

/** Decides, and throws PolicyDeniedError on deny. */
export function requirePermit(policy: TrustPolicy, action: PolicyAction, projectId: string): PolicyDecision {
  const decision = decide(policy, action, projectId);
  if (decision.effect === "deny") throw new PolicyDeniedError(action, projectId, decision.ruleId);
  return decision;
}

/** The threshold actually applied: the highest of the trust's floor, the policy's and the hub's request. */
export function effectiveThreshold(trustThreshold: number, decision: PolicyDecision, requested = 0): number {
  return Math.max(trustThreshold, decision.minCohortSize, requested);
}

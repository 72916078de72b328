import { TrustAnswerState } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { Badge, type Tone } from "../../ui/page.js";

const STATE: Record<TrustAnswerState, [string, Tone]> = {
  [TrustAnswerState.UNSPECIFIED]: ["unknown", "neutral"],
  [TrustAnswerState.PENDING]: ["pending", "info"],
  [TrustAnswerState.OFFLINE]: ["offline: waiting", "warn"],
  [TrustAnswerState.OK]: ["answered", "good"],
  [TrustAnswerState.SUPPRESSED]: ["suppressed", "warn"],
  [TrustAnswerState.EMPTY]: ["no records", "neutral"],
  [TrustAnswerState.ERROR]: ["error", "bad"],
};

export const answerWords = (s: TrustAnswerState): string => STATE[s][0];

/** A trust's answer to a cohort query in words. */
export function AnswerBadge({ state }: { state: TrustAnswerState }) {
  const [words, tone] = STATE[state];
  return <Badge tone={tone}>{words}</Badge>;
}

/** True once the trust has answered, whatever the answer (a pending or offline trust has not). */
export const hasAnswered = (s: TrustAnswerState): boolean => s !== TrustAnswerState.PENDING && s !== TrustAnswerState.OFFLINE && s !== TrustAnswerState.UNSPECIFIED;

const CATEGORY: Record<string, string> = {
  invalid_query: "The trust refused the query: it breaks one of the trust's rules.",
  denied_by_policy: "The trust's policy does not allow this query for this project.",
  query_timeout: "The query ran longer than the trust allows.",
  unavailable: "The trust could not answer in time.",
  internal_error: "The trust failed to answer (an internal error; its operators see the details).",
  cancelled: "The query was cancelled before the trust answered.",
};

export interface AnswerError {
  category: string;
  /** The category as a sentence. */
  summary: string;
  /** The validator's rule, for invalid_query. */
  rule: string | undefined;
  /** What the trust said beyond the category (for invalid_query, the rule's message). */
  detail: string | undefined;
}

/**
 * Reads a trust's redacted error: "<category>" or "<category>: <detail>", where an invalid query's detail
 * is "query rejected (<rule>): <message>".
 */
export function readAnswerError(error: string): AnswerError {
  const colon = error.indexOf(":");
  const category = (colon < 0 ? error : error.slice(0, colon)).trim();
  const rest = colon < 0 ? "" : error.slice(colon + 1).trim();
  const rejected = /^query rejected \(([a-z_]+)\):\s*(.*)$/s.exec(rest);
  return {
    category,
    summary: CATEGORY[category] ?? `The trust could not answer (${category || "no reason given"}).`,
    rule: rejected?.[1],
    detail: (rejected ? rejected[2] : rest) || undefined,
  };
}

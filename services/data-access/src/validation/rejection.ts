/** Why a cohort query was refused. Stable ids: the hub and researchers' tools may branch on them. */
export type RejectionRule =
  | "max_length"
  | "parse_error"
  | "single_statement"
  | "select_only"
  | "no_writes"
  | "omop_schema_only"
  | "function_not_allowed"
  | "operator_not_allowed"
  | "type_not_allowed"
  | "literal_limit"
  | "unsupported_syntax"
  | "data_dependent_error"
  | "person_id_required";

/** A cohort query that breaks one of the trust's rules; the message names what to change. */
export class QueryRejectedError extends Error {
  override readonly name = "QueryRejectedError";
  constructor(
    readonly rule: RejectionRule,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** No cohort has been frozen for the project at this trust. */
export class CohortNotFoundError extends Error {
  override readonly name = "CohortNotFoundError";
  constructor(readonly projectId: string) {
    super("no cohort has been frozen for this project at this trust");
  }
}

/**
 * Fewer frozen members remain than the threshold. One fixed message whatever the numbers, so that
 * repeated calls cannot be used to count members leaving the cohort.
 */
export class CohortBelowThresholdError extends Error {
  override readonly name = "CohortBelowThresholdError";
  constructor() {
    super("the cohort has fewer members than the trust's threshold; row-level access is closed");
  }
}

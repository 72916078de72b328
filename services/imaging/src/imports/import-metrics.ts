import type { Counter, Meter } from "@opentelemetry/api";

/**
 * What became of one attempt at a claimed study: imported (retrieved, de-identified and stored);
 * converted (a stored study's NIfTI made); not_found or ambiguous (no, or more than one, study in the
 * PACS has its accession number); retrying (failed, queued again after a back-off); failed (failed for
 * good); interrupted (the service stopped; it resumes at the next start).
 */
export type StudyOutcome = "imported" | "converted" | "not_found" | "ambiguous" | "retrying" | "failed" | "interrupted";

/** What imaging measures: import progress by outcome only (never project, accession or UID). */
export class ImagingMetrics {
  private readonly studies: Counter;

  constructor(private readonly meter: Meter) {
    this.studies = meter.createCounter("flip_imaging_studies", {
      description: "Study import attempts by outcome (imported, converted, not_found, ambiguous, retrying, failed, interrupted)",
      unit: "{study}",
    });
  }

  studyDone(outcome: StudyOutcome): void {
    this.studies.add(1, { outcome });
  }

  /** Reports `count()` as flip_imaging_studies_in_progress at each scrape. */
  observeStudiesInProgress(count: () => number): void {
    this.meter
      .createObservableGauge("flip_imaging_studies_in_progress", { description: "Studies this imaging service is importing now", unit: "{study}" })
      .addCallback((result) => result.observe(count()));
  }
}

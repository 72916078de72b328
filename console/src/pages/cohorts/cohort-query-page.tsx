import { Page } from "../../ui/page.js";

export function CohortQueryPage() {
  return <Page title="Cohort query">{null}</Page>;
}

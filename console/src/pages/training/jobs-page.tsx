import { Page } from "../../ui/page.js";

export function JobsPage() {
  return <Page title="Training jobs">{null}</Page>;
}

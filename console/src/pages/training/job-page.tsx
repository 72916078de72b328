import { Page } from "../../ui/page.js";

export function JobPage() {
  return <Page title="Training job">{null}</Page>;
}

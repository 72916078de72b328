import { Page } from "../../ui/page.js";

export function ProjectPage() {
  return <Page title="Project">{null}</Page>;
}

import { Page } from "../../ui/page.js";

export function ModelPage() {
  return <Page title="Model">{null}</Page>;
}

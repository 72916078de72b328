import { Page } from "../../ui/page.js";

export function NewModelPage() {
  return <Page title="New model">{null}</Page>;
}

import { Page } from "../../ui/page.js";

export function TrustsPage() {
  return <Page title="Trusts">{null}</Page>;
}

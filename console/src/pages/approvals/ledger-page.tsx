import { Page } from "../../ui/page.js";

export function LedgerPage() {
  return <Page title="Trust ledger">{null}</Page>;
}

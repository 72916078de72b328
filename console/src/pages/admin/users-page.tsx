import { Page } from "../../ui/page.js";

export function UsersPage() {
  return <Page title="Users">{null}</Page>;
}

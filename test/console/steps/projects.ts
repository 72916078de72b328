import type { Locator, Page } from "playwright-core";

/** Anything the trusts do may take this long. */
const SLOW_MS = 120_000;
/** What the console alone does (a page load, a hub call). */
const UI_MS = 30_000;

/** Opens `path` on the console the page is signed in to, unless the page shows it already. */
async function open(page: Page, path: string): Promise<void> {
  if (new URL(page.url()).pathname === path) return;
  await page.goto(new URL(path, page.url()).href);
}

const idFromUrl = (page: Page, pattern: RegExp): string => {
  const m = pattern.exec(new URL(page.url()).pathname);
  if (!m) throw new Error(`expected a page matching ${pattern}, got ${page.url()}`);
  return m[1]!;
};

const text = async (l: Locator): Promise<string> => ((await l.textContent()) ?? "").replace(/\s+/g, " ").trim();

/** Fills in "New project" on /projects and creates it; returns the new project's id from its page. */
export async function createProject(page: Page, project: { name: string; description: string }): Promise<string> {
  await open(page, "/projects");
  const form = page.getByRole("region", { name: "New project" });
  await form.getByLabel("Name", { exact: true }).fill(project.name);
  await form.getByLabel("Description", { exact: true }).fill(project.description);
  await form.getByRole("button", { name: "Create project" }).click();
  await page.waitForURL(/\/projects\/[0-9a-f-]{36}$/, { timeout: UI_MS });
  await page.getByRole("heading", { level: 1, name: project.name }).waitFor({ timeout: UI_MS });
  return idFromUrl(page, /^\/projects\/([0-9a-f-]{36})$/);
}

/** Adds a member by email on the project's page; resolves once the members list shows them. */
export async function addMember(page: Page, projectId: string, email: string): Promise<void> {
  await open(page, `/projects/${projectId}`);
  const members = page.getByRole("region", { name: "Members" });
  await members.getByLabel("Email of a person to add").fill(email);
  await members.getByRole("button", { name: "Add member" }).click();
  await members.getByRole("list", { name: "Members" }).getByRole("listitem").filter({ hasText: email }).waitFor({ timeout: UI_MS });
}

/**
 * Writes a cohort query in the project's editor and runs it; waits on the query's page until every trust
 * has answered. Returns the query's id, the total shown, and each trust's card: its state in words
 * ("answered", "suppressed", "no records", "error") and record count (0 where none is shown).
 */
export async function runCohortQuery(page: Page, projectId: string, query: { name: string; sql: string }): Promise<{ queryId: string; total: number; trusts: { code: string; state: string; count: number }[] }> {
  await open(page, `/projects/${projectId}/cohorts/new`);
  await page.getByLabel("Name", { exact: true }).fill(query.name);
  await page.getByLabel("SQL", { exact: true }).fill(query.sql);
  await page.getByRole("button", { name: "Run at every trust" }).click();
  await page.waitForURL(/\/cohorts\/[0-9a-f-]{36}$/, { timeout: UI_MS });
  const queryId = idFromUrl(page, /\/cohorts\/([0-9a-f-]{36})$/);
  await page.getByText(/^All \d+ trusts answered\.$/).waitFor({ timeout: SLOW_MS });
  const total = Number((await text(page.locator("dt", { hasText: /^Total records$/ }).locator("xpath=following-sibling::dd[1]"))).replace(/[^0-9]/g, ""));
  const trusts: { code: string; state: string; count: number }[] = [];
  for (const card of await page.getByRole("region", { name: "Answers by trust" }).locator("section").all()) {
    const records = await text(card.locator("dt", { hasText: /^Records$/ }).locator("xpath=following-sibling::dd[1]"));
    trusts.push({
      code: await text(card.getByRole("heading", { level: 3 })),
      state: await text(card.locator("header .badge")),
      count: /^[0-9,]+$/.test(records) ? Number(records.replace(/,/g, "")) : 0,
    });
  }
  return { queryId, total, trusts };
}

/** Ticks exactly the named trusts (codes) on the project's page and stages the project there; resolves once it shows as staged. */
export async function stageAt(page: Page, projectId: string, trustCodes: string[]): Promise<void> {
  await open(page, `/projects/${projectId}`);
  const panel = page.getByRole("region", { name: "Trusts and decisions" });
  await panel.getByRole("table").waitFor({ timeout: UI_MS });
  for (const box of await panel.getByRole("checkbox").all()) {
    const name = (await box.evaluate((el) => el.closest("label")?.textContent ?? "")).trim();
    const code = /\(([a-z0-9-]+)\)$/.exec(name)?.[1] ?? "";
    await box.setChecked(trustCodes.includes(code));
  }
  await panel.getByRole("button", { name: `Stage at ${trustCodes.join(", ")}` }).click();
  await panel.getByRole("button", { name: "Unstage" }).waitFor({ timeout: UI_MS });
}

/**
 * Each trust's row on the project's page: its code, its decision in words ("pending", "approved",
 * "declined", "withdrawn", or "not staged") and its cohort freeze in words ("not frozen", "freezing",
 * "frozen: 1,234 persons", "frozen, count suppressed", "freeze failed").
 */
export async function decisionStates(page: Page, projectId: string): Promise<{ code: string; state: string; freeze: string }[]> {
  await open(page, `/projects/${projectId}`);
  const table = page.getByRole("region", { name: "Trusts and decisions" }).getByRole("table");
  await table.locator("tbody tr").first().waitFor({ timeout: UI_MS });
  const rows: { code: string; state: string; freeze: string }[] = [];
  for (const row of await table.locator("tbody tr").all()) {
    const cells = row.getByRole("cell");
    const decision = cells.nth(2);
    rows.push({
      code: /\(([a-z0-9-]+)\)/.exec(await text(cells.nth(0)))?.[1] ?? "",
      state: (await decision.locator(".badge").count()) ? await text(decision.locator(".badge")) : await text(decision),
      freeze: await text(cells.nth(4)),
    });
  }
  return rows;
}

/** Types `sql` into the project's query editor and returns the problems the default rules report beside it (none: []). */
export async function checkProblems(page: Page, projectId: string, sql: string): Promise<string[]> {
  await open(page, `/projects/${projectId}/cohorts/new`);
  await page.getByLabel("SQL", { exact: true }).fill(sql);
  const result = page.getByRole("complementary", { name: "Checks" }).locator('[role="status"][aria-busy="false"]');
  await result.waitFor({ timeout: UI_MS });
  await result.locator(".cohorts-ok, .cohorts-problems, .error").first().waitFor({ timeout: UI_MS });
  if (await result.locator(".error").count()) throw new Error(`the check failed: ${await text(result.locator(".error"))}`);
  return await Promise.all((await result.locator(".cohorts-problem-message").all()).map(text));
}

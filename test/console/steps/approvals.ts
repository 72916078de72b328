import type { Locator, Page } from "playwright-core";

/** What the console alone does (a page load, a hub call). */
const UI_MS = 30_000;

const text = async (l: Locator): Promise<string> => ((await l.textContent()) ?? "").replace(/\s+/g, " ").trim();

/** Opens /approvals unless the page shows it already. */
async function openApprovals(page: Page): Promise<void> {
  if (new URL(page.url()).pathname === "/approvals") return;
  await page.goto(new URL("/approvals", page.url()).href);
}

/** The trust's queue on /approvals, once its projects have loaded. */
async function queue(page: Page, trustCode: string): Promise<Locator> {
  await openApprovals(page);
  const region = page.getByRole("region", { name: `Waiting for a decision at ${trustCode}`, exact: true });
  await region.locator(".approvals-queue, .approvals-empty").first().waitFor({ timeout: UI_MS });
  return region;
}

/** The row of `projectName` in the trust's table of decisions on /approvals. */
function decidedRow(page: Page, trustCode: string, projectName: string): Locator {
  return page
    .getByRole("table", { name: `Projects ${trustCode} has decided on, newest decision first`, exact: true })
    .locator("tbody > tr")
    .filter({ has: page.getByText(projectName, { exact: true }) });
}

/** The names of the projects waiting for the trust's decision on /approvals, in the order shown. */
export async function pendingProjects(page: Page, trustCode: string): Promise<string[]> {
  const region = await queue(page, trustCode);
  return await region.getByRole("article").getByRole("heading", { level: 3 }).allTextContents();
}

/**
 * Approves or declines a waiting project for the trust on /approvals, giving `reason` in the dialog; waits
 * until the project has left the queue and shows in the trust's decided table. Returns the decision shown there.
 */
export async function decide(page: Page, trustCode: string, projectName: string, decision: "approve" | "decline", reason: string): Promise<string> {
  const region = await queue(page, trustCode);
  const verb = decision === "approve" ? "Approve" : "Decline";
  await region.getByRole("article", { name: projectName, exact: true }).getByRole("button", { name: `${verb} ${projectName}`, exact: true }).click();
  const dialog = page.getByRole("dialog", { name: `${verb} "${projectName}" for ${trustCode}?`, exact: true });
  await dialog.getByLabel(/^Reason/).fill(reason);
  await dialog.getByRole("button", { name: `${verb} for ${trustCode}`, exact: true }).click();
  await dialog.waitFor({ state: "hidden", timeout: UI_MS });
  await region.getByRole("article", { name: projectName, exact: true }).waitFor({ state: "detached", timeout: UI_MS });
  const row = decidedRow(page, trustCode, projectName);
  await row.waitFor({ timeout: UI_MS });
  return await text(row.getByRole("cell").nth(1));
}

/**
 * Waits on /approvals, without reloading by hand, until the trust has frozen the approved cohort of the
 * project; returns the frozen size shown, or "suppressed" when the trust did not report one.
 */
export async function waitForFrozen(page: Page, trustCode: string, projectName: string, timeoutMs = 120_000): Promise<number | "suppressed"> {
  await openApprovals(page);
  const cohort = decidedRow(page, trustCode, projectName).getByRole("cell").nth(4);
  await cohort.filter({ hasText: /^frozen|freeze failed/ }).waitFor({ timeout: timeoutMs });
  const shown = await text(cohort);
  const count = /^frozen: ([\d,]+) persons$/.exec(shown);
  if (count) return Number(count[1]!.replace(/,/g, ""));
  if (shown.startsWith("frozen, size suppressed")) return "suppressed";
  throw new Error(`${trustCode} did not freeze the cohort of "${projectName}": ${shown}`);
}

/** The first page of the trust's ledger on /ledger, newest first: the kind of work, its project ("" for none) and its outcome as shown. */
export async function ledgerEntries(page: Page, trustCode: string): Promise<{ kind: string; project: string; outcome: string }[]> {
  await page.goto(new URL(`/ledger?trust=${encodeURIComponent(trustCode)}`, page.url()).href);
  const table = page.getByRole("table", { name: `Work the hub sent to ${trustCode}, newest first (page 1)`, exact: true });
  await table.waitFor({ timeout: UI_MS });
  const rows = await table.locator("tbody > tr").all();
  if (rows.length === 1 && (await rows[0]!.locator("td.empty").count()) > 0) return [];
  const entries: { kind: string; project: string; outcome: string }[] = [];
  for (const row of rows) {
    const cells = row.getByRole("cell");
    entries.push({
      kind: await text(cells.nth(1).locator(".approvals-ledger-kind")),
      project: (await cells.nth(2).locator(".approvals-muted").count()) > 0 ? "" : await text(cells.nth(2)),
      outcome: await text(cells.nth(4).locator(".badge")),
    });
  }
  return entries;
}

import type { Locator, Page } from "playwright-core";

/** What the console alone does (a page load, a hub call). */
const UI_MS = 30_000;

/** Opens `path` on the console the page is signed in to, unless the page shows it already. */
async function open(page: Page, path: string): Promise<void> {
  if (new URL(page.url()).pathname === path) return;
  await page.goto(new URL(path, page.url()).href);
}

const text = async (l: Locator): Promise<string> => ((await l.textContent()) ?? "").replace(/\s+/g, " ").trim();

/** The body rows of the table captioned `caption`, once it has loaded; none when it shows its empty sentence. */
async function tableRows(page: Page, caption: string): Promise<Locator[]> {
  const table = page.getByRole("table", { name: caption, exact: true });
  await table.waitFor({ timeout: UI_MS });
  const rows = await table.locator("tbody > tr").all();
  if (rows.length === 1 && (await rows[0]!.locator("td.empty").count()) > 0) return [];
  return rows;
}

/** The trusts on /admin/trusts: code, whether the link is online, and "last seen" as shown ("just now", "12 s ago", "never"). */
export async function trustRows(page: Page): Promise<{ code: string; online: boolean; lastSeen: string }[]> {
  await open(page, "/admin/trusts");
  const rows: { code: string; online: boolean; lastSeen: string }[] = [];
  for (const row of await tableRows(page, "Trusts")) {
    const cells = row.getByRole("cell");
    const link = cells.nth(3);
    rows.push({
      code: await text(cells.nth(1)),
      online: (await text(link)).startsWith("Online"),
      lastSeen: (await text(link.locator(".admin-last-seen"))).replace(/^last seen /, "").replace(/^never seen$/, "never"),
    });
  }
  return rows;
}

/** Registers a trust on /admin/trusts; returns its API key from the shown-once dialog, which it closes. */
export async function registerTrust(page: Page, trust: { name: string; code: string; region?: string }): Promise<string> {
  await open(page, "/admin/trusts");
  await page.getByRole("button", { name: "Register a trust", exact: true }).click();
  const form = page.getByRole("region", { name: "Register a trust" });
  await form.getByLabel("Name", { exact: true }).fill(trust.name);
  await form.getByLabel("Code", { exact: true }).fill(trust.code);
  if (trust.region) await form.getByLabel("Region (optional)").fill(trust.region);
  await form.getByRole("button", { name: "Register trust" }).click();
  const shown = page.getByRole("dialog", { name: /^API key for the new trust / });
  const key = await text(shown.getByLabel(`API key (${trust.code})`, { exact: true }));
  await shown.getByRole("button", { name: "Done, I have stored it" }).click();
  await shown.waitFor({ state: "hidden", timeout: UI_MS });
  return key;
}

/** Rotates the trust's API key on /admin/trusts (confirming); returns the key from the shown-once dialog, which it closes. */
export async function rotateTrustKey(page: Page, code: string): Promise<string> {
  await open(page, "/admin/trusts");
  await page.getByRole("button", { name: `Rotate key of ${code}`, exact: true }).click();
  await page.getByRole("dialog", { name: /^Rotate the API key of / }).getByRole("button", { name: "Rotate key", exact: true }).click();
  const shown = page.getByRole("dialog", { name: /^New API key for / });
  const key = await text(shown.getByLabel(`API key (${code})`, { exact: true }));
  await shown.getByRole("button", { name: "Done, I have stored it" }).click();
  await shown.waitFor({ state: "hidden", timeout: UI_MS });
  return key;
}

export type AdminRoleName = "Admin" | "Researcher" | "Viewer" | "Trust Admin";

/** Creates a user on /admin/users with one role (Trust Admin of `trustCode`) and a generated password; returns that password, closing its dialog. */
export async function createUser(page: Page, user: { email: string; name: string; role: AdminRoleName; trustCode?: string }): Promise<string> {
  await open(page, "/admin/users");
  await page.getByRole("button", { name: "New user", exact: true }).click();
  const form = page.getByRole("region", { name: "New user" });
  await form.getByLabel("Email", { exact: true }).fill(user.email);
  await form.getByLabel("Name", { exact: true }).fill(user.name);
  await form.getByRole("radio", { name: /^Generate one/ }).check();
  for (const role of ["Admin", "Researcher", "Viewer", "Trust Admin"] as const) {
    await form.getByRole("checkbox", { name: role, exact: true }).setChecked(role === user.role);
  }
  if (user.role === "Trust Admin") {
    if (!user.trustCode) throw new Error("a Trust Admin needs trustCode");
    const picker = form.getByLabel("Trust they are Trust Admin of");
    const value = await picker.locator("option", { hasText: `(${user.trustCode})` }).getAttribute("value");
    if (!value) throw new Error(`no trust ${user.trustCode} to choose`);
    await picker.selectOption(value);
  }
  await form.getByRole("button", { name: "Create user" }).click();
  const shown = page.getByRole("dialog", { name: `Initial password for ${user.email}` });
  const password = await text(shown.getByLabel(`Initial password (${user.email})`, { exact: true }));
  await shown.getByRole("button", { name: "Done, I have stored it" }).click();
  await shown.waitFor({ state: "hidden", timeout: UI_MS });
  return password;
}

/** Presses "Verify chain" on /admin/audit; returns the verdict shown and how many entries it checked. */
export async function verifyAuditChain(page: Page): Promise<{ ok: boolean; entries: number }> {
  await open(page, "/admin/audit");
  await page.getByRole("button", { name: "Verify chain" }).click();
  const verdict = page.getByText(/^✓ Chain verified: [\d,]+ entries$|^✗ Chain broken at entry /);
  await verdict.waitFor({ timeout: UI_MS });
  const words = await text(verdict);
  const verified = /Chain verified: ([\d,]+) entries/.exec(words);
  if (verified) return { ok: true, entries: Number(verified[1]!.replace(/,/g, "")) };
  const before = await text(page.getByText(/^[\d,]+ entries before it verified\./));
  return { ok: false, entries: Number(/^([\d,]+)/.exec(before)![1]!.replace(/,/g, "")) };
}

/** Filters /admin/audit by action prefix ("" for all); returns the actions listed on the first page (newest first). */
export async function auditActions(page: Page, actionPrefix: string): Promise<string[]> {
  await open(page, "/admin/audit");
  await page.getByLabel("Action starts with").fill(actionPrefix);
  await page.getByRole("button", { name: "Apply filters" }).click();
  const filter = actionPrefix ? `action starts with "${actionPrefix}".` : "all entries.";
  await page.getByRole("status").filter({ hasText: new RegExp(` on page 1, newest first: ${filter.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`) }).waitFor({ timeout: UI_MS });
  const actions: string[] = [];
  for (const row of await tableRows(page, "Audit entries")) actions.push(await text(row.getByRole("cell").nth(3)));
  return actions;
}

/** Turns deployment mode on or off on /admin/deployment (confirming) unless it is so already; returns the state then shown. */
export async function setDeploymentMode(page: Page, on: boolean): Promise<{ on: boolean; safeToRedeploy: boolean; runningTasks: number; runningJobs: number }> {
  await open(page, "/admin/deployment");
  const mode = page.getByRole("region", { name: "Deployment mode" });
  const fact = (term: string) => mode.locator("dt", { hasText: new RegExp(`^${term}$`) }).locator("xpath=following-sibling::dd[1]");
  const wanted = on ? "On: new work paused" : "Off: work runs normally";
  await fact("Deployment mode").waitFor({ timeout: UI_MS });
  if ((await text(fact("Deployment mode"))) !== wanted) {
    await mode.getByRole("button", { name: on ? "Turn deployment mode on" : "Turn deployment mode off" }).click();
    await page.getByRole("dialog", { name: on ? "Turn deployment mode on?" : "Turn deployment mode off?" }).getByRole("button", { name: on ? "Turn it on" : "Turn it off" }).click();
    await fact("Deployment mode").filter({ hasText: wanted }).waitFor({ timeout: UI_MS });
  }
  return {
    on,
    safeToRedeploy: (await text(fact("Safe to redeploy"))).startsWith("Yes"),
    runningTasks: Number((await text(fact("Running tasks"))).replace(/,/g, "")),
    runningJobs: Number((await text(fact("Running jobs"))).replace(/,/g, "")),
  };
}

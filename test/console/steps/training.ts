import { statSync } from "node:fs";
import type { Page } from "playwright-core";

/** Anything the trusts or training do may take this long. */
const SLOW_MS = 120_000;
const ENDED = /^(completed|failed|aborted)$/;

/** Opens `path` on the console the page is signed in to, unless the page shows it already. */
async function open(page: Page, path: string): Promise<void> {
  if (new URL(page.url()).pathname === path) return;
  await page.goto(new URL(path, page.url()).href);
}

const idFromUrl = (page: Page, prefix: string): string => {
  const m = new RegExp(`/${prefix}/([0-9a-f-]{36})$`).exec(new URL(page.url()).pathname);
  if (!m) throw new Error(`expected a /${prefix}/<id> page, got ${page.url()}`);
  return m[1]!;
};

/** Fills in a project's new-model form (files are paths on disk) and sends it; returns the new model's id from its page. */
export async function createModel(page: Page, projectId: string, model: { name: string; image: string; configJson: string; files: string[]; description?: string }): Promise<string> {
  await open(page, `/projects/${projectId}/models/new`);
  await page.getByLabel("Name", { exact: true }).fill(model.name);
  if (model.description) await page.getByLabel("Description").fill(model.description);
  await page.getByLabel("Workload image").fill(model.image);
  await page.getByLabel("Config (JSON)").fill(model.configJson);
  await page.getByLabel("Files", { exact: true }).setInputFiles(model.files);
  await page.getByRole("button", { name: "Create model" }).click();
  await page.waitForURL(/\/models\/[0-9a-f-]{36}$/, { timeout: SLOW_MS });
  await page.getByRole("heading", { level: 1, name: model.name }).waitFor();
  return idFromUrl(page, "models");
}

/** Starts a training job of a model at exactly the named trusts (codes) for `rounds` rounds; returns the job's id from its page. */
export async function startJob(page: Page, modelId: string, job: { trusts: string[]; rounds: number }): Promise<string> {
  await open(page, `/models/${modelId}`);
  const trusts = page.getByRole("group", { name: "Trusts" });
  await trusts.waitFor({ timeout: SLOW_MS });
  for (const box of await trusts.getByRole("checkbox").all()) {
    if (await box.isDisabled()) continue;
    const code = (await page.locator(`label[for="${await box.getAttribute("id")}"]`).textContent())?.trim() ?? "";
    await box.setChecked(job.trusts.includes(code));
  }
  await page.getByLabel("Rounds", { exact: true }).fill(String(job.rounds));
  await page.getByRole("button", { name: "Start training" }).click();
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/, { timeout: SLOW_MS });
  return idFromUrl(page, "jobs");
}

/** The job's state in words, as its page shows it. */
async function shownState(page: Page): Promise<string> {
  return ((await page.getByRole("region", { name: "Progress" }).locator(".badge").first().textContent()) ?? "").trim();
}

/**
 * Waits on the job's page until the job has ended and its live stream delivered everything; returns its
 * state in words, the rounds aggregated, the metric charts' labels and the fewest trusts with points in any chart.
 */
export async function waitForJobEnd(page: Page, jobId: string, timeoutMs = SLOW_MS): Promise<{ state: string; rounds: number; metricsLabels: string[]; seriesPerChart: number }> {
  await open(page, `/jobs/${jobId}`);
  const progress = page.getByRole("region", { name: "Progress" });
  await progress.getByText("The job has ended").waitFor({ timeout: timeoutMs });
  await progress.locator(".badge").first().filter({ hasText: ENDED }).waitFor({ timeout: 30_000 });
  const state = await shownState(page);
  const metrics = page.getByRole("region", { name: "Metrics" });
  if (state === "completed") await metrics.locator("figure").first().waitFor({ timeout: 30_000 });
  const aggregated = (await progress.getByText(/rounds? aggregated/).textContent()) ?? "";
  const metricsLabels = (await metrics.locator("figure > figcaption").allTextContents()).map((t) => t.trim());
  const withPoints = await metrics.locator("figure").evaluateAll((figures) => figures.map((f) => [...f.querySelectorAll("g[data-series]")].filter((g) => g.querySelector("circle")).length));
  return { state, rounds: Number(/^(\d+)/.exec(aggregated.trim())?.[1] ?? 0), metricsLabels, seriesPerChart: withPoints.length ? Math.min(...withPoints) : 0 };
}

/** Aborts a live job from its page with a reason; resolves once the page shows it aborted. */
export async function abortJob(page: Page, jobId: string, reason: string): Promise<void> {
  await open(page, `/jobs/${jobId}`);
  await page.getByRole("button", { name: "Abort job" }).click();
  const dialog = page.getByRole("dialog", { name: "Abort this job?" });
  await dialog.getByLabel("Reason").fill(reason);
  await dialog.getByRole("button", { name: "Abort job" }).click();
  await page.getByRole("region", { name: "Progress" }).locator(".badge").first().filter({ hasText: /^aborted$/ }).waitFor({ timeout: SLOW_MS });
}

/** Downloads a completed job's final weights from its page (checked against the hub's SHA-256 there); returns the saved file. */
export async function downloadWeights(page: Page, jobId: string): Promise<{ path: string; size: number; name: string }> {
  await open(page, `/jobs/${jobId}`);
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: SLOW_MS }), page.getByRole("button", { name: "Download final weights" }).click()]);
  const path = await download.path();
  return { path, size: statSync(path).size, name: download.suggestedFilename() };
}

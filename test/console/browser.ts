import { existsSync, mkdirSync } from "node:fs";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { CONSOLE_DIST, ensureConsoleBuilt } from "../../tools/src/console/build-console.js";
import { startTestHub, type TestHub } from "../support/test-hub.js";

const root = path.resolve(import.meta.dirname, "../..");

/** Where the browser tests write their screenshots (kept by CI as artifacts; git-ignored). */
export const SCREENSHOT_DIR = path.join(root, "test-artifacts", "console");

/** Debian's chromium (installed by .ci/run), or FLIP_CHROMIUM. */
export function chromiumPath(): string {
  const candidates = [process.env.FLIP_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"].filter((p): p is string => Boolean(p));
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`no Chromium found (looked at ${candidates.join(", ")}): install Debian's chromium (apt-get install chromium) or set FLIP_CHROMIUM`);
  return found;
}

/** A test hub serving the console as built now (built first when its sources changed), with `env` on top. */
export async function startConsoleHub(env: Record<string, string> = {}): Promise<TestHub> {
  await ensureConsoleBuilt();
  return await startTestHub({ FLIP_CONSOLE_DIR: CONSOLE_DIST, ...env });
}

/** Headless Chromium; --no-sandbox because tests may run as root (CI does). */
export async function launchBrowser(): Promise<Browser> {
  return await chromium.launch({ executablePath: chromiumPath(), args: ["--no-sandbox", "--disable-dev-shm-usage"], headless: true });
}

/** A page the size of a laptop screen, failing the test on any script error in the console's pages. */
export async function laptopPage(browser: Browser, errors: string[]): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console error: ${m.text()}`);
  });
  return page;
}

/** Saves a full-page screenshot as test-artifacts/console/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Signs in with email and password on the console's sign-in page; resolves once a signed-in page shows. */
export async function signIn(page: Page, baseUrl: string, email: string, password: string): Promise<void> {
  await page.goto(`${baseUrl}/sign-in`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor({ timeout: 30_000 });
}

export async function signOut(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to FLIP" }).waitFor();
}

/**
 * Lists longer than one of the hub's pages (500 rows): the console's "Show more" follows page tokens to
 * the end, in a real Chromium against a real hub, and the reader behind it neither skips nor repeats a row.
 */
import anyTest, { type TestFn } from "ava";
import type { Browser } from "playwright-core";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { HUB_MAX_PAGE_SIZE, readFirstRows } from "../../console/src/ui/first-rows.js";
import { PASSWORD, type TestHub } from "../support/test-hub.js";
import { laptopPage, launchBrowser, startConsoleHub, signIn } from "./browser.js";

const PROJECTS = HUB_MAX_PAGE_SIZE + 20;

const test = anyTest as TestFn<{ hub: TestHub; browser: Browser; researcher: string; errors: string[] }>;

test.before(async (t) => {
  const hub = await startConsoleHub();
  const admin = (await hub.firstAdmin()).token;
  const researcher = (await hub.user(admin, "rhea@uni.test", [{ role: Role.RESEARCHER }])).token;
  await hub.user(admin, "vic@uni.test", [{ role: Role.VIEWER }]);
  const projects = hub.client(ProjectService, researcher);
  const names = Array.from({ length: PROJECTS }, (_, i) => `Study ${String(i + 1).padStart(3, "0")}`);
  for (let i = 0; i < names.length; i += 20) {
    await Promise.all(names.slice(i, i + 20).map((name) => projects.createProject({ name, description: "a long list" })));
  }
  t.context = { hub, browser: await launchBrowser(), researcher, errors: [] };
});

test.after.always(async (t) => {
  await t.context.browser?.close();
  await t.context.hub?.close();
});

test("the reader of a list's first rows crosses the hub's page limit by page token, neither skipping nor repeating", async (t) => {
  const projects = t.context.hub.client(ProjectService, t.context.researcher);
  const calls: number[] = [];
  const read = (limit: number) =>
    readFirstRows(async (page) => {
      calls.push(page.pageSize);
      const res = await projects.listProjects({ page });
      return { rows: res.projects.map((p) => p.name), nextPageToken: res.page?.nextPageToken ?? "" };
    }, limit);

  const first = await read(50);
  t.is(first.rows.length, 50);
  t.true(first.more);
  t.deepEqual(calls, [50], "one call while within a page");

  calls.length = 0;
  const all = await read(PROJECTS + 50);
  t.deepEqual(calls, [HUB_MAX_PAGE_SIZE, PROJECTS + 50 - HUB_MAX_PAGE_SIZE], "the rest by the page token");
  t.is(all.rows.length, PROJECTS);
  t.is(new Set(all.rows).size, PROJECTS, "no project twice");
  t.false(all.more);
  t.deepEqual(all.rows.slice(0, 50), first.rows, "the same order from the top");
});

test("a Viewer's project list grows by Show more to the last of 520 projects", async (t) => {
  const page = await laptopPage(t.context.browser, t.context.errors);
  await signIn(page, t.context.hub.hub.url, "vic@uni.test", PASSWORD);
  const list = page.getByRole("region", { name: "All projects" });
  const rows = list.getByRole("table", { name: "Projects" }).locator("tbody tr");
  const more = list.getByRole("button", { name: "Show more projects" });
  await more.waitFor();
  t.is(await rows.count(), 50);
  let shown = 50;
  while (shown < PROJECTS) {
    await more.click();
    shown = Math.min(PROJECTS, shown + 50);
    await rows.nth(shown - 1).waitFor();
  }
  await more.waitFor({ state: "detached" });
  t.is(await rows.count(), PROJECTS);
  const names = await list.getByRole("link", { name: /^Study \d{3}$/ }).allTextContents();
  t.is(new Set(names).size, PROJECTS, "every project once");
  t.deepEqual(t.context.errors.filter((e) => e.startsWith("page error")), []);
  await page.context().close();
});

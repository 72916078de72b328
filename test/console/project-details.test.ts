/**
 * A project's owner edits its details and deletes it in the console, in a real Chromium against a real
 * hub: an edit that crosses someone else's is refused, not lost; a member is offered neither.
 */
import anyTest, { type TestFn } from "ava";
import type { Browser, Page } from "playwright-core";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { Role } from "@flip/gen/flip/hub/v1/users_pb.js";
import { PASSWORD, type TestHub } from "../support/test-hub.js";
import { laptopPage, launchBrowser, startConsoleHub, signIn } from "./browser.js";

const test = anyTest as TestFn<{ hub: TestHub; browser: Browser; owner: string; errors: string[] }>;

test.before(async (t) => {
  const hub = await startConsoleHub();
  const admin = (await hub.firstAdmin()).token;
  const owner = (await hub.user(admin, "olga@uni.test", [{ role: Role.RESEARCHER }])).token;
  await hub.user(admin, "max@uni.test", [{ role: Role.RESEARCHER }]);
  t.context = { hub, browser: await launchBrowser(), owner, errors: [] };
});

test.after.always(async (t) => {
  await t.context.browser?.close();
  await t.context.hub?.close();
});

test.afterEach((t) => {
  t.deepEqual(
    t.context.errors.filter((e) => e.startsWith("page error")),
    [],
  );
});

async function projectPage(t: { context: { browser: Browser; errors: string[]; hub: TestHub } }, email: string, projectId: string): Promise<Page> {
  const page = await laptopPage(t.context.browser, t.context.errors);
  await signIn(page, t.context.hub.hub.url, email, PASSWORD);
  await page.goto(`${t.context.hub.hub.url}/projects/${projectId}`);
  return page;
}

test.serial("the owner edits the details; an edit crossing someone else's is refused with what to do, and nothing is lost", async (t) => {
  const projects = t.context.hub.client(ProjectService, t.context.owner);
  const { project } = await projects.createProject({ name: "Retinopathy", description: "first words", members: ["max@uni.test"] });
  const page = await projectPage(t, "olga@uni.test", project!.id);
  await page.getByRole("heading", { level: 1, name: "Retinopathy" }).waitFor();

  await page.getByRole("button", { name: "Edit details" }).click();
  const form = page.getByRole("form", { name: "Edit project details" });
  await form.getByLabel("Name", { exact: true }).fill("Diabetic retinopathy");
  await form.getByLabel("Description", { exact: true }).fill("grading fundus photographs");
  await form.getByRole("button", { name: "Save details" }).click();
  await page.getByRole("heading", { level: 1, name: "Diabetic retinopathy" }).waitFor();
  t.is((await projects.getProject({ projectId: project!.id })).project!.description, "grading fundus photographs");

  await page.getByRole("button", { name: "Edit details" }).click();
  await form.getByLabel("Description", { exact: true }).fill("my version");
  // Meanwhile, in another session, the owner changes the description.
  await projects.updateProject({ projectId: project!.id, name: "Diabetic retinopathy", description: "their version" });
  await form.getByRole("button", { name: "Save details" }).click();
  await form.getByRole("alert").filter({ hasText: "someone changed this project while you were editing it" }).waitFor();
  t.is(await form.getByLabel("Description", { exact: true }).inputValue(), "my version", "the text typed is kept");
  t.is((await projects.getProject({ projectId: project!.id })).project!.description, "their version", "the other change is not overwritten");
  await form.getByRole("button", { name: "Cancel" }).click();
  await page.getByText("their version").waitFor();
  await page.context().close();

  const member = await projectPage(t, "max@uni.test", project!.id);
  await member.getByRole("heading", { level: 1, name: "Diabetic retinopathy" }).waitFor();
  t.is(await member.getByRole("button", { name: "Edit details" }).count(), 0, "a member may read, not edit");
  t.is(await member.getByRole("button", { name: "Delete project" }).count(), 0);
  await member.context().close();
});

test.serial("the owner deletes a project after a dialog that says what deleting does; it leaves the list", async (t) => {
  const projects = t.context.hub.client(ProjectService, t.context.owner);
  const { project } = await projects.createProject({ name: "Short-lived study", description: "" });
  const page = await projectPage(t, "olga@uni.test", project!.id);
  await page.getByRole("heading", { level: 1, name: "Short-lived study" }).waitFor();

  await page.getByRole("button", { name: "Delete project" }).click();
  const dialog = page.getByRole("dialog", { name: "Delete “Short-lived study”?" });
  await dialog.getByText(/live training jobs are aborted/).waitFor();
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "hidden" });
  t.false((await projects.getProject({ projectId: project!.id })).project!.deleted, "Cancel deletes nothing");

  await page.getByRole("button", { name: "Delete project" }).click();
  await dialog.getByRole("button", { name: "Delete project" }).click();
  await page.getByRole("heading", { level: 1, name: "Projects" }).waitFor();
  await page.getByRole("region", { name: "Your projects" }).getByRole("table").waitFor();
  t.is(await page.getByRole("link", { name: "Short-lived study" }).count(), 0);
  const { projects: listed } = await projects.listProjects({});
  t.false(listed.some((p) => p.id === project!.id));
  await page.context().close();
});

/**
 * Signing in to the web console in a real Chromium against a real hub: password, TOTP enrolment and
 * codes, sessions that renew themselves and end when an admin disables the account, single sign-on
 * through an OpenID Connect provider (authorization code with PKCE), and sign-out.
 */
import anyTest, { type TestFn } from "ava";
import type { Browser, Page } from "playwright-core";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { AuthService, Role, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { base32Decode } from "@flip/hub/identity/base32.js";
import { startTestIssuer, type TestIssuer } from "@flip/hub/identity/test-issuer.js";
import { totpCode } from "@flip/hub/identity/totp.js";
import { PASSWORD, type TestHub } from "../support/test-hub.js";
import { laptopPage, launchBrowser, startConsoleHub, screenshot, signIn, signOut } from "./browser.js";

const test = anyTest as TestFn<{ hub: TestHub; issuer: TestIssuer; browser: Browser; admin: string; url: string; errors: string[] }>;

test.before(async (t) => {
  const issuer = await startTestIssuer();
  const hub = await startConsoleHub({
    FLIP_OIDC_ISSUER: issuer.issuer,
    FLIP_OIDC_AUDIENCE: issuer.audience,
    FLIP_OIDC_CLIENT_ID: issuer.browserClientId,
    FLIP_OIDC_DISPLAY_NAME: "Sign in with Test NHS login",
    // The shortest the hub allows: the console renews it after 20 s.
    FLIP_ACCESS_TOKEN_TTL_S: "30",
  });
  // An API token: the admin's session tokens live only 30 s here.
  const { secret: admin } = await hub.client(AuthService, (await hub.firstAdmin()).token).createApiToken({ name: "console tests" });
  t.context = { hub, issuer, browser: await launchBrowser(), admin, url: hub.hub.url, errors: [] };
});

test.after.always(async (t) => {
  await t.context.browser?.close();
  await t.context.hub?.close();
  await t.context.issuer?.close();
});

test.afterEach((t) => {
  // Failed calls the page shows on purpose log nothing; an uncaught error in the console is a bug.
  t.deepEqual(
    t.context.errors.filter((e) => e.startsWith("page error")),
    [],
  );
  t.context.errors.length = 0;
});

async function newPage(t: { context: { browser: Browser; errors: string[] } }): Promise<Page> {
  return await laptopPage(t.context.browser, t.context.errors);
}

test.serial("a researcher signs in with a password, stays signed in on reload, and signs out", async (t) => {
  await t.context.hub.user(t.context.admin, "ada@trust.test", [{ role: Role.RESEARCHER }]);
  const page = await newPage(t);
  await page.goto(`${t.context.url}/projects`);
  await page.getByRole("heading", { name: "Sign in to FLIP" }).waitFor();
  t.regex(page.url(), /\/sign-in\?next=%2Fprojects$/, "a signed-out visit goes to sign-in, remembering the page");
  await screenshot(page, "sign-in");

  await page.getByLabel("Email").fill("ada@trust.test");
  await page.getByLabel("Password").fill("not the password at all");
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await t.notThrowsAsync(page.getByRole("alert").filter({ hasText: /email or password/i }).waitFor(), "a wrong password is refused without saying which part was wrong");

  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("heading", { level: 1, name: "Projects" }).waitFor();
  t.regex(page.url(), /\/projects$/, "back to the page asked for");
  t.is(await page.getByRole("link", { name: "ada@trust.test" }).count(), 1);

  await page.reload();
  await page.getByRole("heading", { level: 1, name: "Projects" }).waitFor();
  t.is(await page.getByRole("button", { name: "Sign out" }).count(), 1, "a reload keeps the session");
  const otherTab = await page.context().newPage();
  await otherTab.goto(`${t.context.url}/jobs`);
  await otherTab.getByRole("heading", { level: 1, name: "Training jobs" }).waitFor();
  t.is(await otherTab.getByRole("link", { name: "ada@trust.test" }).count(), 1, "a link opened in a new tab is signed in too");

  await signOut(page);
  await page.getByText("You signed out.").waitFor();
  await otherTab.getByText("You signed out in another tab.").waitFor();
  await page.goto(`${t.context.url}/projects`);
  await page.getByRole("heading", { name: "Sign in to FLIP" }).waitFor();
  t.pass();
  await page.context().close();
});

test.serial("each role's navigation offers what the hub lets it read: a Viewer reads projects and jobs but is not offered a new project", async (t) => {
  const { trust } = await t.context.hub.client(TrustService, t.context.admin).registerTrust({ name: "nav hospital", code: "nav-trust", region: "test" });
  await t.context.hub.user(t.context.admin, "vera@trust.test", [{ role: Role.VIEWER }]);
  await t.context.hub.user(t.context.admin, "tara@trust.test", [{ role: Role.TRUST_ADMIN, trust: trust!.id }]);
  const navOf = async (page: Page) => {
    const nav = page.getByRole("navigation", { name: "Main" });
    await nav.waitFor();
    return (await nav.getByRole("link").allTextContents()).map((l) => l.trim());
  };

  const viewer = await newPage(t);
  await signIn(viewer, t.context.url, "vera@trust.test", PASSWORD);
  await viewer.getByRole("heading", { level: 1, name: "Projects" }).waitFor();
  t.deepEqual(await navOf(viewer), ["Projects", "Training jobs"]);
  await viewer.getByRole("region", { name: "All projects" }).waitFor();
  t.is(await viewer.getByRole("region", { name: "New project" }).count(), 0, "the hub would refuse a Viewer's new project, so none is offered");
  await viewer.context().close();

  const trustAdmin = await newPage(t);
  await signIn(trustAdmin, t.context.url, "tara@trust.test", PASSWORD);
  await trustAdmin.getByRole("heading", { level: 1, name: "Approvals" }).waitFor();
  t.deepEqual(await navOf(trustAdmin), ["Training jobs", "Approvals", "Trust ledger"]);
  await trustAdmin.getByRole("link", { name: "Training jobs" }).click();
  await trustAdmin.getByRole("heading", { level: 1, name: "Training jobs" }).waitFor();
  await trustAdmin.context().close();
});

test.serial("an account that must use TOTP enrols in the console first; sign-in then asks for the code", async (t) => {
  await t.context.hub.client(UserService, t.context.admin).createUser({ email: "tom@trust.test", name: "Tom", password: PASSWORD, roles: [{ role: Role.RESEARCHER, trustId: "" }], totpRequired: true });
  const page = await newPage(t);
  await signIn(page, t.context.url, "tom@trust.test", PASSWORD);
  await page.getByRole("heading", { level: 1, name: "Your account" }).waitFor();
  t.is(await page.getByRole("navigation", { name: "Main" }).count(), 0, "nothing else is offered until the account is enrolled");
  await page.getByRole("button", { name: "Set up an authenticator app" }).click();
  const key = (await page.getByLabel("Authenticator key").textContent())!.trim();
  await screenshot(page, "account-totp-enrolment");
  const secret = base32Decode(key);
  await page.getByLabel("Code from the app").fill(totpCode(secret, new Date()));
  await page.getByRole("button", { name: "Confirm" }).click();
  await page.getByText("Your authenticator app is set up").waitFor();
  await page.getByRole("navigation", { name: "Main" }).waitFor();
  await signOut(page);

  await page.getByLabel("Email").fill("tom@trust.test");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByLabel("Authenticator code").waitFor();
  // The enrolment used this step's code (each works once); the next step's is within the accepted drift.
  await page.getByLabel("Authenticator code").fill(totpCode(secret, new Date(Date.now() + 30_000)));
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
  t.pass();
  await page.context().close();
});

test.serial("the session renews itself before the access token expires; disabling the account signs the tab out", async (t) => {
  const user = await t.context.hub.user(t.context.admin, "rae@trust.test", [{ role: Role.RESEARCHER }]);
  const page = await newPage(t);
  const refreshes: number[] = [];
  page.on("response", (r) => {
    if (r.url().endsWith("/flip.hub.v1.AuthService/Refresh")) refreshes.push(r.status());
  });
  await signIn(page, t.context.url, "rae@trust.test", PASSWORD);
  // Access tokens live 30 s here; the console renews at two thirds of that, without any click.
  await page.waitForResponse((r) => r.url().endsWith("/flip.hub.v1.AuthService/Refresh"), { timeout: 60_000 });
  t.deepEqual(refreshes.slice(0, 1), [200]);
  await page.getByRole("link", { name: "Training jobs" }).click();
  await page.getByRole("heading", { level: 1, name: "Training jobs" }).waitFor();
  t.is(await page.getByRole("button", { name: "Sign out" }).count(), 1, "still signed in after the first token expired");

  await t.context.hub.client(UserService, t.context.admin).setUserDisabled({ user: user.id, disabled: true });
  await page.getByRole("link", { name: "Projects" }).click();
  await page.getByRole("heading", { name: "Sign in to FLIP" }).waitFor({ timeout: 60_000 });
  await page.getByText("Your session has ended; sign in again.").waitFor();
  t.pass();
  await page.context().close();
});

test.serial("single sign-on: the console signs in through the provider (code with PKCE) and calls the hub with its token", async (t) => {
  await t.context.hub.client(UserService, t.context.admin).createUser({ email: "sso@trust.test", name: "Sam", roles: [{ role: Role.RESEARCHER, trustId: "" }], oidcSubject: "subject-sso" });
  t.context.issuer.loginSubject = "subject-sso";
  const page = await newPage(t);
  await page.goto(`${t.context.url}/sign-in`);
  await page.getByRole("button", { name: "Sign in with Test NHS login" }).click();
  await page.getByRole("heading", { level: 1, name: "Projects" }).waitFor();
  t.is(await page.getByRole("link", { name: "sso@trust.test" }).count(), 1);
  t.is(t.context.issuer.codesExchanged(), 1, "the code was exchanged once, with its verifier");
  await page.getByRole("link", { name: "sso@trust.test" }).click();
  await page.getByText("single sign-on").waitFor();

  // A subject no FLIP user is linked to is refused with a sentence, not a blank page.
  await signOut(page);
  t.context.issuer.loginSubject = "nobody";
  await page.getByRole("button", { name: "Sign in with Test NHS login" }).click();
  await page.getByRole("alert").waitFor();
  t.regex((await page.getByRole("alert").textContent()) ?? "", /Single sign-on did not complete/);
  await screenshot(page, "sso-refused");
  await page.context().close();
});

test.serial("?next= after sign-in only ever leads to a page of this console", async (t) => {
  await t.context.hub.user(t.context.admin, "ned@trust.test", [{ role: Role.RESEARCHER }]);
  const page = await newPage(t);
  await page.goto(`${t.context.url}/sign-in?next=${encodeURIComponent("//evil.example/phish")}`);
  await page.getByLabel("Email").fill("ned@trust.test");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("heading", { level: 1, name: "Projects" }).waitFor();
  t.is(new URL(page.url()).origin, t.context.url);
  await page.context().close();
});

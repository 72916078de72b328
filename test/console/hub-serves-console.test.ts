/**
 * The hub serves the web console on its own address, beside its RPCs: the built files with hardening
 * headers, every page path answered with index.html (the console's router shows the page), nothing
 * outside the console's directory, a page that says how to build the console when it is not built, and
 * CORS only for the origins FLIP_CONSOLE_ORIGINS names. Real hub, real HTTP/1.1 (what browsers use in
 * cleartext).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import anyTest, { type TestFn } from "ava";
import { startTestHub, type TestHub } from "../support/test-hub.js";

const test = anyTest as TestFn<{ hub: TestHub; dir: string; bare: TestHub }>;

const INDEX = "<!doctype html><title>FLIP console</title><div id=root></div>";
const SCRIPT = `console.log(${JSON.stringify("x".repeat(4000))});`;

test.before(async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "flip-console-"));
  mkdirSync(path.join(dir, "assets"));
  writeFileSync(path.join(dir, "index.html"), INDEX);
  writeFileSync(path.join(dir, "assets", "index-abc123.js"), SCRIPT);
  writeFileSync(path.join(dir, "..", `${path.basename(dir)}-secret.txt`), "outside the console");
  const hub = await startTestHub({ FLIP_CONSOLE_DIR: dir, FLIP_CONSOLE_ORIGINS: "http://localhost:5173" });
  const bare = await startTestHub({ FLIP_CONSOLE_DIR: path.join(dir, "not-built") });
  t.context = { hub, dir, bare };
});

test.after.always(async (t) => {
  await t.context.hub?.close();
  await t.context.bare?.close();
  if (t.context.dir) {
    rmSync(t.context.dir, { recursive: true, force: true });
    rmSync(path.join(t.context.dir, "..", `${path.basename(t.context.dir)}-secret.txt`), { force: true });
  }
});

const get = (hub: TestHub, urlPath: string, init: RequestInit = {}) => fetch(`${hub.hub.url}${urlPath}`, init);

test("GET / answers with the console, with a strict Content-Security-Policy and hardening headers", async (t) => {
  const res = await get(t.context.hub, "/");
  t.is(res.status, 200);
  t.is(res.headers.get("content-type"), "text/html; charset=utf-8");
  t.is(await res.text(), INDEX);
  const csp = res.headers.get("content-security-policy") ?? "";
  for (const directive of ["default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"]) {
    t.true(csp.includes(directive), `CSP has ${directive}: ${csp}`);
  }
  t.false(csp.includes("unsafe-inline"), "no inline scripts or styles are allowed");
  t.is(res.headers.get("x-content-type-options"), "nosniff");
  t.is(res.headers.get("x-frame-options"), "DENY");
  t.is(res.headers.get("referrer-policy"), "no-referrer");
  t.is(res.headers.get("cache-control"), "no-cache", "index.html is revalidated, so a new console is picked up");
});

test("every page path of the console answers with index.html, so links and reloads work", async (t) => {
  for (const p of ["/projects", "/projects/0d6f2c1e-9b7a-4c55-8f0e-1d2c3b4a5968/cohorts/new", "/jobs/abc?tab=metrics", "/sign-in"]) {
    const res = await get(t.context.hub, p);
    t.is(res.status, 200, p);
    t.is(await res.text(), INDEX, p);
  }
});

test("built assets are cached for good, compressed when asked, and answered 304 when unchanged", async (t) => {
  const res = await get(t.context.hub, "/assets/index-abc123.js", { headers: { "accept-encoding": "gzip" } });
  t.is(res.status, 200);
  t.is(res.headers.get("content-type"), "text/javascript; charset=utf-8");
  t.is(res.headers.get("cache-control"), "public, max-age=31536000, immutable");
  // fetch decodes gzip itself; the raw length shows it travelled compressed.
  t.is(await res.text(), SCRIPT);
  t.is(res.headers.get("content-encoding"), "gzip");
  t.true(Number(res.headers.get("content-length")) < SCRIPT.length / 4);
  const etag = res.headers.get("etag")!;
  const again = await get(t.context.hub, "/assets/index-abc123.js", { headers: { "if-none-match": etag } });
  t.is(again.status, 304);
  const missing = await get(t.context.hub, "/assets/index-old999.js");
  t.is(missing.status, 404, "a missing asset is not answered with index.html (a stale page would run HTML as a script)");
  t.regex(await missing.text(), /reload the page/);
});

test("nothing outside the console's directory can be read", async (t) => {
  const secret = `${path.basename(t.context.dir)}-secret.txt`;
  for (const p of [`/../${secret}`, `/%2e%2e/${secret}`, `/assets/..%2f..%2f${secret}`, `/assets/%2e%2e%2f%2e%2e%2f${secret}`, "/assets/%00.js", "/assets/..\\..\\x"]) {
    const res = await get(t.context.hub, p);
    const body = await res.text();
    t.false(body.includes("outside the console"), `${p} must not read outside the console`);
  }
});

test("RPCs still answer on the same port, and a POST to a page path is not the console", async (t) => {
  const health = await get(t.context.hub, "/grpc.health.v1.Health/Check", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  t.is(health.status, 200);
  t.deepEqual(await health.json(), { status: "SERVING" });
  const post = await get(t.context.hub, "/projects", { method: "POST", body: "x" });
  t.is(post.status, 404);
});

test("CORS: the configured development origin may call RPCs; any other origin gets no CORS headers", async (t) => {
  const preflight = (origin: string) =>
    get(t.context.hub, "/flip.hub.v1.AuthService/Login", {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,connect-protocol-version,authorization" },
    });
  const ok = await preflight("http://localhost:5173");
  t.is(ok.status, 204);
  t.is(ok.headers.get("access-control-allow-origin"), "http://localhost:5173");
  t.regex(ok.headers.get("access-control-allow-headers") ?? "", /authorization/i);
  t.regex(ok.headers.get("access-control-allow-methods") ?? "", /POST/);
  const other = await preflight("https://evil.example");
  t.is(other.status, 403);
  t.is(other.headers.get("access-control-allow-origin"), null);

  const call = await get(t.context.hub, "/flip.hub.v1.AuthService/GetSignInOptions", { method: "POST", headers: { origin: "http://localhost:5173", "content-type": "application/json" }, body: "{}" });
  t.is(call.status, 200);
  t.is(call.headers.get("access-control-allow-origin"), "http://localhost:5173");
  t.regex(call.headers.get("access-control-expose-headers") ?? "", /flip-totp-required/);
  const foreign = await get(t.context.hub, "/flip.hub.v1.AuthService/GetSignInOptions", { method: "POST", headers: { origin: "https://evil.example", "content-type": "application/json" }, body: "{}" });
  t.is(foreign.headers.get("access-control-allow-origin"), null);
});

test("a hub whose console is not built says so on GET / and how to build it; its RPCs work", async (t) => {
  const res = await get(t.context.bare, "/projects");
  t.is(res.status, 503);
  const body = await res.text();
  t.regex(body, /The FLIP console is not built/);
  t.regex(body, /npm run build:console/);
  t.regex(body, /FLIP_CONSOLE_DIR/);
  const health = await get(t.context.bare, "/grpc.health.v1.Health/Check", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  t.is(health.status, 200);
});

test("GetSignInOptions offers no single sign-on when none is configured", async (t) => {
  const res = await get(t.context.hub, "/flip.hub.v1.AuthService/GetSignInOptions", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  t.deepEqual(await res.json(), {});
});

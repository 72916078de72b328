/**
 * `tools/bin/flip` as people run it: a separate process, from any directory (through a symlink too),
 * `--json` output that is JSON and nothing else, `flip task list` paging, and `flip gateway` never
 * outliving the CLI that started it.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, symlinkSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import anyTest, { type TestFn } from "ava";
import { TaskService } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { eventually } from "@flip/shared/testing/eventually.js";
import { startTestHub, type TestHub } from "../../../test/support/test-hub.js";

const BIN = path.resolve(import.meta.dirname, "../../bin/flip");
/** Matches FLIP_TRUST_KEY's format; no hub ever accepts it. */
const SOME_TRUST_KEY = `flip_trust_0123456789abcdef_${"a".repeat(43)}`;

interface Ctx {
  hub: TestHub;
  token: string;
  /** A symlink to the script, in a directory outside the repository (also the commands' working directory). */
  elsewhere: string;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  const hub = await startTestHub();
  await hub.registerTrust("north");
  const { token } = await hub.firstAdmin();
  const elsewhere = mkdtempSync(path.join(os.tmpdir(), "flip-bin-"));
  symlinkSync(BIN, path.join(elsewhere, "flip"));
  t.context = { hub, token, elsewhere };
});

test.after.always(async (t) => {
  await t.context.hub?.close();
});

async function flip(ctx: Ctx, argv: string[]): Promise<{ out: string; err: string }> {
  const { stdout, stderr } = await promisify(execFile)(path.join(ctx.elsewhere, "flip"), argv, {
    cwd: ctx.elsewhere,
    env: { PATH: process.env.PATH, HOME: ctx.elsewhere, FLIP_CONFIG_DIR: ctx.elsewhere, FLIP_HUB_URL: ctx.hub.hub.url, FLIP_TOKEN: ctx.token },
  });
  return { out: stdout, err: stderr };
}

test.serial("flip runs from another directory through a symlink, and --json prints only JSON on stdout", async (t) => {
  const got = await flip(t.context, ["trust", "get", "north", "--json"]);
  const { trust } = JSON.parse(got.out) as { trust: { code: string; linkStatus: string } };
  t.is(trust.code, "north");
  t.is(trust.linkStatus, "LINK_STATUS_NEVER_CONNECTED");
  t.deepEqual(Object.keys(JSON.parse((await flip(t.context, ["trust", "list", "--json"])).out) as object), ["trusts"]);
});

test.serial("flip task list pages with --page-size and --page-token, or takes every page with --all", async (t) => {
  const tasks = t.context.hub.client(TaskService, t.context.token);
  for (let i = 0; i < 5; i++) await tasks.createEchoTask({ trust: "north", message: `page ${i}` });
  type Listing = { tasks: { id: string }[]; nextPageToken: string };
  const first = JSON.parse((await flip(t.context, ["task", "list", "--page-size", "2", "--json"])).out) as Listing;
  t.is(first.tasks.length, 2);
  t.not(first.nextPageToken, "");
  const seen = [...first.tasks];
  let token = first.nextPageToken;
  while (token) {
    const page = JSON.parse((await flip(t.context, ["task", "list", "--page-size", "2", "--page-token", token, "--json"])).out) as Listing;
    seen.push(...page.tasks);
    token = page.nextPageToken;
  }
  t.is(new Set(seen.map((x) => x.id)).size, 5, "every task once, across pages");
  const all = JSON.parse((await flip(t.context, ["task", "list", "--page-size", "2", "--all", "--json"])).out) as Listing;
  t.deepEqual(all.tasks.map((x) => x.id), seen.map((x) => x.id));
  t.is(all.nextPageToken, "");
  const human = await flip(t.context, ["task", "list", "--page-size", "2"]);
  t.regex(human.out, /more: the same command with --page-token \S+, or --all/);
  const firstPageByDefault = await flip(t.context, ["task", "list", "--trust", "north"]);
  t.is(firstPageByDefault.out.trim().split("\n").length, 1 + 5, "a header and every task, on the default page of 50");
});

const logsOf = new WeakMap<ChildProcess, () => string>();

/** Starts `flip gateway` against a hub address where nothing listens (it keeps retrying); returns the CLI and its service's pid. */
async function startGatewayCli(ctx: Ctx): Promise<{ cli: ChildProcess; servicePid: number }> {
  const cli = spawn(
    path.join(ctx.elsewhere, "flip"),
    ["gateway", "--trust", "north", "--key", SOME_TRUST_KEY, "--hub", "http://127.0.0.1:9", "--state-dir", mkdtempSync(path.join(ctx.elsewhere, "state-"))],
    // Its own process group, as a shell gives a foreground command (Ctrl-C signals the whole group).
    { cwd: ctx.elsewhere, stdio: ["ignore", "pipe", "pipe"], env: { PATH: process.env.PATH, FLIP_CONFIG_DIR: ctx.elsewhere }, detached: true },
  );
  let out = "";
  cli.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  logsOf.set(cli, () => out);
  cli.stderr!.resume();
  await eventually(() => out.includes('"msg":"gateway started"'), Boolean, { timeoutMs: 60_000, what: "the gateway's start" });
  const children = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(cli.pid)]).toString();
  const service = children.split("\n").find((l) => l.includes("services/trust-gateway/src/main.ts"));
  if (!service) throw new Error(`no gateway process under the CLI; its children: ${children}`);
  return { cli, servicePid: Number(service.trim().split(/\s+/)[0]) };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const exitOf = (cli: ChildProcess) => new Promise<number | null>((resolve) => (cli.exitCode !== null ? resolve(cli.exitCode) : cli.once("exit", (code) => resolve(code))));

test.serial("SIGTERM to flip gateway stops the gateway it started, and the CLI exits with it", async (t) => {
  const { cli, servicePid } = await startGatewayCli(t.context);
  cli.kill("SIGTERM");
  t.is(await exitOf(cli), 0, "the gateway's own clean exit");
  await eventually(() => !isAlive(servicePid), Boolean, { what: "the gateway's exit" });
  t.pass();
});

test.serial("Ctrl-C in a terminal (SIGINT to the whole process group) stops the gateway gracefully, once", async (t) => {
  const { cli, servicePid } = await startGatewayCli(t.context);
  process.kill(-cli.pid!, "SIGINT");
  t.is(await exitOf(cli), 0);
  await eventually(() => !isAlive(servicePid), Boolean, { what: "the gateway's exit" });
  const logs = logsOf.get(cli)!();
  t.true(logs.includes('"signal":"SIGINT","msg":"shutting down"'));
  t.false(logs.includes("second signal: exiting now"), "the gateway got the signal once, not from the terminal and again from the CLI");
});

test.serial("a CLI killed outright (SIGKILL) does not leave its gateway running", async (t) => {
  const { cli, servicePid } = await startGatewayCli(t.context);
  cli.kill("SIGKILL");
  await exitOf(cli);
  await eventually(() => !isAlive(servicePid), Boolean, { timeoutMs: 30_000, what: "the orphaned gateway's exit" });
  t.pass();
});

/**
 * `flip`: the FLIP command line. `flip help` lists commands; every command takes --hub, --token and --json.
 */
import { parseArgs } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { allCommands } from "./commands/index.js";
import { UsageError, type CliCommand, type CliContext } from "./command.js";
import { readCredentials } from "./credentials.js";
import { bearerAuth } from "@flip/shared/auth/bearer.js";

const commonOptions = {
  hub: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

function findCommand(words: string[]): { command: CliCommand; rest: string[] } | undefined {
  let best: { command: CliCommand; rest: string[] } | undefined;
  for (const c of allCommands) {
    if (c.path.every((w, i) => words[i] === w) && (!best || c.path.length > best.command.path.length)) {
      best = { command: c, rest: words.slice(c.path.length) };
    }
  }
  return best;
}

function usage(): string {
  const lines = allCommands.map((c) => `  flip ${c.path.join(" ")} ${c.usage}`.trimEnd() + `\n      ${c.summary}`);
  return [
    "usage: flip <command> [options] [--hub URL] [--token TOKEN] [--json]",
    "",
    "commands:",
    ...lines,
    "",
    "The hub URL comes from --hub, FLIP_HUB_URL, the stored login, or http://127.0.0.1:7770.",
    "The token comes from --token, FLIP_TOKEN, the stored login (flip login), or FLIP_ADMIN_TOKEN (first admin only).",
  ].join("\n");
}

export async function runCli(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  stdout: NodeJS.WritableStream = process.stdout,
  stderr: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const words = argv.filter((a) => !a.startsWith("-"));
  const found = argv.length === 0 || argv[0] === "help" ? undefined : findCommand(words);
  if (!found) {
    (argv.length === 0 || argv[0] === "help" || argv.includes("--help") ? stdout : stderr).write(usage() + "\n");
    return argv.length === 0 || argv[0] === "help" || argv.includes("--help") ? 0 : 2;
  }
  const { command } = found;
  let parsed;
  try {
    parsed = parseArgs({
      args: argv.slice(argv.indexOf(command.path[command.path.length - 1]!) + 1),
      options: { ...commonOptions, ...(command.options ?? {}) },
      allowPositionals: command.positionals ?? false,
      strict: true,
    });
  } catch (e) {
    stderr.write(`${e instanceof Error ? e.message : String(e)}\nusage: flip ${command.path.join(" ")} ${command.usage}\n`);
    return 2;
  }
  if (parsed.values.help) {
    stdout.write(`usage: flip ${command.path.join(" ")} ${command.usage}\n${command.summary}\n`);
    return 0;
  }
  const stored = readCredentials(env);
  const hubUrl = (parsed.values.hub as string | undefined) ?? env.FLIP_HUB_URL ?? stored?.hubUrl ?? "http://127.0.0.1:7770";
  // The stored login outranks the bootstrap admin token: the hub refuses that token once an Admin exists.
  const token = (parsed.values.token as string | undefined) ?? env.FLIP_TOKEN ?? stored?.token ?? env.FLIP_ADMIN_TOKEN;
  const json = Boolean(parsed.values.json);
  const transportFor = (bearer: string | undefined) =>
    createConnectTransport({
      baseUrl: hubUrl,
      httpVersion: "2",
      interceptors: bearer ? [bearerAuth(bearer)] : [],
    });
  const transport = transportFor(token);
  const ctx: CliContext = {
    hubUrl,
    token,
    json,
    client: (service) => createClient(service, transport),
    clientAs: (service, bearer) => createClient(service, transportFor(bearer)),
    env,
    print(human, data) {
      stdout.write((json ? JSON.stringify(data, null, 2) : human) + "\n");
    },
    stdout,
    stderr,
  };
  try {
    const code = await command.run(ctx, { values: parsed.values as never, positionals: parsed.positionals });
    return code ?? 0;
  } catch (e) {
    if (e instanceof UsageError) {
      stderr.write(`${e.message}\nusage: flip ${command.path.join(" ")} ${command.usage}\n`);
      return 2;
    }
    const err = ConnectError.from(e);
    if (err.code === Code.Unavailable || err.code === Code.Unknown) {
      stderr.write(`error: cannot reach the hub at ${hubUrl} (${err.rawMessage}); is it running? (npm start, or set --hub / FLIP_HUB_URL)\n`);
    } else {
      stderr.write(`error: ${err.rawMessage} [${Code[err.code]}]\n`);
    }
    return 1;
  }
}

if (import.meta.main) {
  process.exitCode = await runCli(process.argv.slice(2));
}

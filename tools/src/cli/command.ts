import type { ParseArgsConfig } from "node:util";
import type { DescService } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";

/** One `flip` sub-command, e.g. `trust register`. */
export interface CliCommand {
  /** Words after `flip`, e.g. ["trust", "register"]. */
  path: string[];
  summary: string;
  /** Usage line after the path, e.g. "--name <name> --code <code> [--region <region>]". */
  usage: string;
  options?: NonNullable<ParseArgsConfig["options"]>;
  /** Whether to accept positional arguments after the path. */
  positionals?: boolean;
  run(ctx: CliContext, args: CliArgs): Promise<number | void>;
}

export interface CliArgs {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

export interface CliContext {
  hubUrl: string;
  /** The bearer token the CLI sends, from --token, FLIP_TOKEN, FLIP_ADMIN_TOKEN or the stored login. */
  token: string | undefined;
  json: boolean;
  /** A typed client of a hub service, authenticated with `token`. */
  client<S extends DescService>(service: S): Client<S>;
  /** A typed client that sends another token (or none), e.g. while `flip login` holds a fresh session. */
  clientAs<S extends DescService>(service: S, token: string | undefined): Client<S>;
  /** The environment the CLI runs in (for the credentials file location). */
  env: NodeJS.ProcessEnv;
  /** Prints `human` (or `data` as JSON with --json). */
  print(human: string, data: unknown): void;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Reads a required string option, or throws a UsageError naming it. */
export function requireOption(args: CliArgs, name: string): string {
  const v = args.values[name];
  if (typeof v !== "string" || v === "") throw new UsageError(`--${name} is required`);
  return v;
}

export function stringOption(args: CliArgs, name: string, fallback = ""): string {
  const v = args.values[name];
  return typeof v === "string" ? v : fallback;
}

export class UsageError extends Error {
  override readonly name = "UsageError";
}

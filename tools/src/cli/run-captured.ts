import { Writable } from "node:stream";
import { runCli } from "./main.js";

export interface CapturedRun {
  code: number;
  out: string;
  err: string;
}

/** Runs `flip …` in this process with `env` (nothing inherited), capturing what it prints; for tests and scripts. */
export async function runCliCaptured(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<CapturedRun> {
  let out = "";
  let err = "";
  const sink = (append: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer | string, _enc, done) {
        append(chunk.toString());
        done();
      },
    });
  const code = await runCli(argv, env, sink((s) => (out += s)), sink((s) => (err += s)));
  return { code, out, err };
}

import { createInterface } from "node:readline/promises";
import { UsageError } from "./command.js";

/** Questions on the terminal for `flip login` and friends; never used when stdin is not a terminal. */
export function isInteractive(): boolean {
  return Boolean(process.stdin.isTTY);
}

function requireTerminal(what: string, alternative: string): void {
  if (!isInteractive()) throw new UsageError(`${what} is needed and stdin is not a terminal: ${alternative}`);
}

/** Asks a question and returns the trimmed answer. */
export async function ask(question: string, alternative: string): Promise<string> {
  requireTerminal(question.replace(/:\s*$/, ""), alternative);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/** Asks for a secret without echoing it. */
export async function askHidden(question: string, alternative: string): Promise<string> {
  requireTerminal(question.replace(/:\s*$/, ""), alternative);
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.setEncoding("utf8");
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = "";
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === "\r" || ch === "\n" || ch === "\u0004") {
            stdin.off("data", onData);
            return resolve(value);
          }
          if (ch === "\u0003") {
            stdin.off("data", onData);
            return reject(new UsageError("cancelled"));
          }
          if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
          else value += ch;
        }
      };
      stdin.on("data", onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write("\n");
  }
}

/** Reads all of stdin (for --password-stdin); a single trailing newline is dropped. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

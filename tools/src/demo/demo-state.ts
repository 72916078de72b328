import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";

/** Files the demo keeps between runs under its state directory (default .flip/demo), mode 0600. */
export class DemoState {
  constructor(readonly dir: string) {
    // Only the leaf is private: the embedded Postgres runs as the `postgres` OS user and must traverse the parents.
    mkdirSync(path.dirname(dir), { recursive: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  read(name: string): string | undefined {
    const f = this.file(name);
    return existsSync(f) ? readFileSync(f, "utf8").trim() : undefined;
  }

  write(name: string, value: string): void {
    const f = this.file(name);
    mkdirSync(path.dirname(f), { recursive: true, mode: 0o700 });
    writeFileSync(f, value + "\n", { mode: 0o600 });
    chmodSync(f, 0o600);
  }

  /** The demo's bootstrap admin token, generated on first run. */
  adminToken(): string {
    let token = this.read("admin-token");
    if (!token) {
      token = randomBytes(24).toString("base64url");
      this.write("admin-token", token);
    }
    return token;
  }
}

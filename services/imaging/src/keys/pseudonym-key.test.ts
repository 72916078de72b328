import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import test from "ava";
import { loadOrCreatePseudonymKey, PseudonymKeyError } from "./pseudonym-key.js";

test("a missing key is made once (32 random bytes, mode 0600) and read back the same", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "flip-key-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "sub", "pseudonym.key");
  const first = await loadOrCreatePseudonymKey(file);
  t.is(first.byteLength, 32);
  t.is((await stat(file)).mode & 0o777, 0o600);
  t.deepEqual(await loadOrCreatePseudonymKey(file), first);
  t.regex(await readFile(file, "utf8"), /^[0-9a-f]{64}\n$/);
});

test("a key others can read, or one too short, is refused with what to do", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "flip-key-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const open = path.join(dir, "open.key");
  await writeFile(open, "ab".repeat(32));
  await chmod(open, 0o644);
  t.regex((await t.throwsAsync(loadOrCreatePseudonymKey(open), { instanceOf: PseudonymKeyError }))!.message, /chmod 600/);
  const short = path.join(dir, "short.key");
  await writeFile(short, "abcd", { mode: 0o600 });
  t.regex((await t.throwsAsync(loadOrCreatePseudonymKey(short), { instanceOf: PseudonymKeyError }))!.message, /at least 32 bytes/);
});

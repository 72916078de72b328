import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import test, { type ExecutionContext } from "ava";
import { UsageError } from "../command.js";
import { readBundleDir, readConfigFile, readWeightsFile, safetensorsProblem } from "./model-bundle.js";

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "flip-bundle-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function write(file: string, content: string | Uint8Array) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
}

/** A safetensors file of one F32 tensor of `n` zeros; `end` moves the tensor's end offset. */
function safetensors(n = 2, end = 4 * n): Buffer {
  const header = Buffer.from(JSON.stringify({ w: { dtype: "F32", shape: [n], data_offsets: [0, end] }, __metadata__: { format: "pt" } }).padEnd(64, " "));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([length, header, Buffer.alloc(4 * n)]);
}

test("a model's files are every regular file under the directory, by relative path, without hidden entries or __pycache__", (t) => {
  const dir = tempDir(t);
  write(path.join(dir, "train.py"), "print('hi')\n");
  write(path.join(dir, "lib/model.py"), "x = 1\n");
  write(path.join(dir, ".git/HEAD"), "ref: main\n");
  write(path.join(dir, ".env"), "SECRET=1\n");
  write(path.join(dir, "lib/__pycache__/model.cpython-313.pyc"), "\0");
  symlinkSync("train.py", path.join(dir, "main.py"));
  const bundle = readBundleDir(dir);
  t.deepEqual(bundle.files.map((f) => f.path), ["lib/model.py", "main.py", "train.py"]);
  t.is(Buffer.from(bundle.files[1]!.content).toString(), "print('hi')\n");
  t.deepEqual(bundle.skipped, [".env", ".git", "lib/__pycache__"]);
  t.is(bundle.totalBytes, 12 + 6 + 12);
});

test("a symbolic link that leaves the directory is refused with its name", (t) => {
  const dir = tempDir(t);
  const outside = tempDir(t);
  write(path.join(outside, "secret.txt"), "x");
  write(path.join(dir, "train.py"), "x");
  symlinkSync(path.join(outside, "secret.txt"), path.join(dir, "data.txt"));
  const e = t.throws(() => readBundleDir(dir), { instanceOf: UsageError });
  t.regex(e.message, /data\.txt is a symbolic link that leaves the directory/);
});

test("a link back up the tree is read once, not forever", (t) => {
  const dir = tempDir(t);
  write(path.join(dir, "a/train.py"), "x");
  symlinkSync("..", path.join(dir, "a/up"));
  t.deepEqual(readBundleDir(dir).files.map((f) => f.path), ["a/train.py"]);
});

test("more than 32 MiB of files is refused before anything is read, naming the largest", (t) => {
  const dir = tempDir(t);
  write(path.join(dir, "train.py"), "x");
  write(path.join(dir, "data.npy"), "");
  truncateSync(path.join(dir, "data.npy"), 33 * 1024 * 1024);
  const e = t.throws(() => readBundleDir(dir), { instanceOf: UsageError });
  t.regex(e.message, /33\.0 MiB in 2 files, at most 32 MiB \(largest: data\.npy 33\.0 MiB/);
});

test("a missing or empty files directory says so", (t) => {
  const dir = tempDir(t);
  t.throws(() => readBundleDir(path.join(dir, "nope")), { message: /no such directory/ });
  write(path.join(dir, ".gitignore"), "x");
  t.throws(() => readBundleDir(dir), { message: /no files to upload \(hidden entries are skipped: \.gitignore\)/ });
});

test("a config must be a JSON object, and a broken one is named with its file", (t) => {
  const dir = tempDir(t);
  write(path.join(dir, "ok.json"), '{"local_epochs": 2}');
  write(path.join(dir, "broken.json"), '{"local_epochs": 2,}');
  write(path.join(dir, "list.json"), "[1]");
  t.is(readConfigFile(path.join(dir, "ok.json")), '{"local_epochs": 2}');
  t.throws(() => readConfigFile(path.join(dir, "broken.json")), { message: /--config .*broken\.json: not valid JSON/ });
  t.throws(() => readConfigFile(path.join(dir, "list.json")), { message: /must hold a JSON object/ });
  t.throws(() => readConfigFile(path.join(dir, "missing.json")), { message: /cannot read it \(ENOENT\)/ });
});

test("initial weights must look like safetensors and be at most 64 MiB", (t) => {
  const dir = tempDir(t);
  write(path.join(dir, "ok.safetensors"), safetensors());
  write(path.join(dir, "model.pt"), Buffer.from("PK\u0003\u0004 a zip archive, as torch.save writes"));
  write(path.join(dir, "huge.safetensors"), "");
  truncateSync(path.join(dir, "huge.safetensors"), 65 * 1024 * 1024);
  t.is(readWeightsFile(path.join(dir, "ok.safetensors")).length, safetensors().length);
  t.throws(() => readWeightsFile(path.join(dir, "model.pt")), { message: /model\.pt: not a safetensors file/ });
  t.throws(() => readWeightsFile(path.join(dir, "huge.safetensors")), { message: /65\.0 MiB, at most 64 MiB/ });
});

test("a safetensors header whose tensors point past the data is not plausible", (t) => {
  t.is(safetensorsProblem(safetensors()), undefined);
  t.regex(safetensorsProblem(safetensors(2, 9)) ?? "", /data_offsets outside the file/);
  t.regex(safetensorsProblem(new Uint8Array(4)) ?? "", /shorter than/);
});

import { mkdtemp, readdir, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { randomUUID } from "node:crypto";
import test from "ava";
import { FsArtifactStore } from "./fs-store.js";

async function tempStore(): Promise<FsArtifactStore> {
  const store = new FsArtifactStore(await mkdtemp(path.join(os.tmpdir(), "flip-artifacts-")));
  await store.init();
  return store;
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<{ bytes: Buffer; sizes: number[] }> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return { bytes: Buffer.concat(parts), sizes: parts.map((p) => p.length) };
}

test("a part keeps its bytes across reopening, so an upload can resume where it stopped", async (t) => {
  const store = await tempStore();
  const id = randomUUID();
  const first = await store.openPart(id);
  await first.append(Buffer.from("hello "));
  await first.sync();
  await first.close();
  const again = await store.openPart(id);
  t.is(await again.size(), 6);
  await again.append(Buffer.from("world"));
  await again.close();
  t.is((await collect(store.readPart(id, 11, 4))).bytes.toString(), "hello world");
  await rm(store.dir, { recursive: true });
});

test("truncating a part drops an unsynced tail before appending again", async (t) => {
  const store = await tempStore();
  const id = randomUUID();
  const part = await store.openPart(id);
  await part.append(Buffer.from("abcdefgh"));
  await part.truncate(3);
  await part.append(Buffer.from("XY"));
  await part.close();
  t.is((await collect(store.readPart(id, 5, 1024))).bytes.toString(), "abcXY");
  await rm(store.dir, { recursive: true });
});

test("commit renames the part atomically and reads start at any offset in bounded chunks", async (t) => {
  const store = await tempStore();
  const id = randomUUID();
  const part = await store.openPart(id);
  await part.append(Buffer.alloc(10_000, 7));
  await part.sync();
  await part.close();
  await store.commit(id);
  t.deepEqual(await readdir(store.dir), [id]);
  const { bytes, sizes } = await collect(store.read(id, 1_000, 4096));
  t.is(bytes.length, 9_000);
  t.true(sizes.every((s) => s <= 4096));
  t.is((await collect(store.read(id, 10_000, 4096))).bytes.length, 0, "reading from the end yields nothing");
  await store.remove(id);
  t.deepEqual(await readdir(store.dir), []);
  await rm(store.dir, { recursive: true });
});

test("discarding a part removes it and is harmless when there is none", async (t) => {
  const store = await tempStore();
  const id = randomUUID();
  await (await store.openPart(id)).close();
  await store.discardPart(id);
  await store.discardPart(id);
  t.deepEqual(await readdir(store.dir), []);
  await rm(store.dir, { recursive: true });
});

test("an id that is not a UUID never becomes a path", async (t) => {
  const store = await tempStore();
  await t.throwsAsync(() => store.openPart("../../etc/passwd"), { message: /not an artifact id/ });
  await rm(store.dir, { recursive: true });
});

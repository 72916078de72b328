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
  await first.writeAt([Buffer.from("hello ")], 0);
  await first.sync();
  await first.close();
  const again = await store.openPart(id);
  t.is(await again.size(), 6);
  await again.writeAt([Buffer.from("world")], 6);
  await again.close();
  t.is((await collect(store.readPart(id, 11, 4))).bytes.toString(), "hello world");
  await rm(store.dir, { recursive: true });
});

test("truncating a part drops an unrecorded tail before writing again", async (t) => {
  const store = await tempStore();
  const id = randomUUID();
  const part = await store.openPart(id);
  await part.writeAt([Buffer.from("abcdefgh")], 0);
  await part.truncate(3);
  await part.writeAt([Buffer.from("XY")], 3);
  await part.close();
  t.is((await collect(store.readPart(id, 5, 1024))).bytes.toString(), "abcXY");
  await rm(store.dir, { recursive: true });
});

test("commit renames the part atomically and reads start at any offset in bounded chunks", async (t) => {
  const store = await tempStore();
  const id = randomUUID();
  const part = await store.openPart(id);
  await part.writeAt([Buffer.alloc(10_000, 7)], 0);
  await part.close();
  await store.commit(id);
  await store.sync(id);
  t.deepEqual(await readdir(store.dir), [id]);
  const { bytes, sizes } = await collect(store.read(id, 1_000, 4096));
  t.is(bytes.length, 9_000);
  t.true(sizes.every((s) => s <= 4096));
  t.is((await collect(store.read(id, 10_000, 4096))).bytes.length, 0, "reading from the end yields nothing");
  await store.remove(id);
  t.deepEqual(await readdir(store.dir), []);
  await rm(store.dir, { recursive: true });
});

test("a write of several pieces lands whole at its position, and writes in flight together do not disturb each other", async (t) => {
  const store = await tempStore();
  const id = randomUUID();
  const part = await store.openPart(id);
  const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
  // Pieces of one message as they arrive off the network: uneven views, some of them empty.
  const pieces = [data.subarray(0, 1), data.subarray(1, 1), data.subarray(1, 700), data.subarray(700, 1500)];
  await Promise.all([part.writeAt(pieces, 0), part.writeAt([data.subarray(1500, 2200), data.subarray(2200)], 1500)]);
  await part.close();
  t.true((await collect(store.readPart(id, 3000, 256))).bytes.equals(data));
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

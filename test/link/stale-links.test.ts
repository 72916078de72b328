/**
 * The stale-link sweep releases links that no replica has recorded hearing from (a crashed replica).
 * A replica that was only stalled, and still holds such a stream, must close it when told, so its
 * gateway dials again instead of keeping a link that can never claim work.
 */
import anyTest, { type TestFn } from "ava";
import { Code } from "@connectrpc/connect";
import { currentStreamOf, releaseStaleLinks } from "@flip/hub/link/stream-ownership.js";
import { RawLink } from "../support/raw-link.js";
import { startTestHub, type TestHub } from "../support/test-hub.js";

interface Ctx {
  hub: TestHub;
}
const test = anyTest as TestFn<Ctx>;

test.before(async (t) => {
  // The hub's own sweep first runs an hour after start here; the test calls the sweep itself.
  t.context = { hub: await startTestHub({ FLIP_OFFLINE_AFTER_MS: "3600000" }) };
});

test.after.always(async (t) => {
  await t.context.hub?.close();
});

test("a link released as stale is closed by the replica still holding it, and the trust can link again", async (t) => {
  const { hub } = t.context;
  const quiet = await hub.registerTrust("quiet");
  const lively = await hub.registerTrust("lively");
  const em = () => hub.hub.db.em();
  const quietLink = RawLink.open(hub.hub.url, quiet.apiKey, { trustCode: "quiet" });
  await quietLink.next("welcome");
  const livelyLink = RawLink.open(hub.hub.url, lively.apiKey, { trustCode: "lively" });
  await livelyLink.next("welcome");
  const livelyStream = await currentStreamOf(em(), lively.id);

  // As if this replica had stalled: nothing recorded about "quiet" for two hours.
  await em().execute("update trust set last_seen_at = now() - interval '2 hours' where id = ?", [quiet.id]);
  await em().execute("update trust_link set connected_at = now() - interval '2 hours' where trust_id = ?", [quiet.id]);
  const released = await releaseStaleLinks(em(), new Date(Date.now() - 60_000));
  t.deepEqual(released, [quiet.id], "only the link nobody had heard from");

  const err = await quietLink.ended();
  t.is(err?.code, Code.Unavailable);
  t.regex(err?.rawMessage ?? "", /released this link/);
  t.is(await currentStreamOf(em(), lively.id), livelyStream, "the other trust's link is untouched");

  const again = RawLink.open(hub.hub.url, quiet.apiKey, { trustCode: "quiet" });
  t.is((await again.next("welcome")).trustCode, "quiet");
  t.truthy(await currentStreamOf(em(), quiet.id));
  again.close();
  livelyLink.close();
});

import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { startTestHub, type TestHub } from "../../../../test/support/test-hub.js";

let h: TestHub;
// A limit no test run can refill in time: one attempt per second, three at once.
test.before(async () => {
  h = await startTestHub({ FLIP_LOGIN_GLOBAL_PER_S: "1", FLIP_LOGIN_GLOBAL_BURST: "3" });
});
test.after.always(async () => {
  await h?.close();
});

test("sign-ins across many accounts are refused with ResourceExhausted once the hub-wide limit is reached", async (t) => {
  const auth = h.client(AuthService);
  // At once, so the bucket cannot refill between them however slow the machine.
  const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => auth.login({ email: `nobody${i}@example.org`, password: "wrong password" })));
  const errors = outcomes.map((o) => (o.status === "rejected" ? ConnectError.from(o.reason) : undefined));
  const codes = errors.map((e) => (e ? Code[e.code] : "OK"));
  const refusals = errors.filter((e) => e?.code === Code.ResourceExhausted);
  t.true(refusals.length >= 1, `codes seen: ${codes.join(", ")}`);
  t.regex(refusals[0]!.rawMessage, /^too many sign-in attempts right now; try again in \d+ s$/);
  t.regex(refusals[0]!.metadata.get("retry-after") ?? "", /^\d+$/);
  t.true(codes.filter((c) => c === "Unauthenticated").length >= 3, `the burst was let through to the password check: ${codes.join(", ")}`);
});

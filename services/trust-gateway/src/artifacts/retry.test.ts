import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { ArtifactAuthError, ArtifactChecksumError, ArtifactRejectedError } from "./errors.js";
import { backoffMs, classify, DEFAULT_RETRY } from "./retry.js";

test("a broken connection or restarting hub is retried", (t) => {
  for (const code of [Code.Unavailable, Code.Internal, Code.Unknown, Code.DeadlineExceeded, Code.Canceled, Code.Aborted]) {
    t.true(classify("a", new ConnectError("x", code)).retry, Code[code]);
  }
  t.true(classify("a", new Error("socket hang up")).retry, "a plain transport error is Unknown, so retried");
});

test("refusals become typed errors that keep the hub's error as their cause", (t) => {
  const auth = classify("a", new ConnectError("bad key", Code.Unauthenticated));
  t.false(auth.retry);
  t.true(auth.error instanceof ArtifactAuthError);
  t.true(classify("a", new ConnectError("disabled", Code.PermissionDenied)).error instanceof ArtifactAuthError);
  const lost = classify("a", new ConnectError("mismatch", Code.DataLoss));
  t.true(lost.error instanceof ArtifactChecksumError);
  t.true(lost.error.cause instanceof ConnectError);
  const taken = classify("a", new ConnectError("other bytes", Code.FailedPrecondition));
  t.true(taken.error instanceof ArtifactRejectedError);
  t.is(taken.error.code, Code.FailedPrecondition);
  t.regex(taken.error.message, /^artifact a: other bytes$/);
});

test("backoff grows exponentially up to its cap, with jitter", (t) => {
  const policy = { ...DEFAULT_RETRY, initialDelayMs: 100, maxDelayMs: 1_000 };
  for (let i = 0; i < 50; i++) {
    const first = backoffMs(policy, 1);
    t.true(first >= 50 && first <= 100);
    const late = backoffMs(policy, 10);
    t.true(late >= 500 && late <= 1_000);
  }
});

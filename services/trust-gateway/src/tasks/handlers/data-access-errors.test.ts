import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { TaskErrorCode } from "../task-handler.js";
import { failureFromDataAccess } from "./data-access-errors.js";

test("the trust's statement timeout reaches the researcher with its limit", (t) => {
  const f = failureFromDataAccess(new ConnectError("the query ran longer than the trust's 30 s limit; narrow it", Code.DeadlineExceeded));
  t.is(f.code, TaskErrorCode.TIMEOUT);
  t.is(f.message, "the query ran longer than the trust's 30 s limit; narrow it");
});

test("any other deadline keeps the generic timeout message", (t) => {
  const f = failureFromDataAccess(new ConnectError("the operation timed out", Code.DeadlineExceeded));
  t.is(f.message, "the query ran past the trust's statement timeout");
});

test("a spent query budget tells the researcher when it resets", (t) => {
  const message = "this project's budget of 3 cohort queries per day at this trust is spent; it resets at 2030-03-05T00:00:00.000Z (00:00 UTC)";
  const f = failureFromDataAccess(new ConnectError(message, Code.ResourceExhausted));
  t.is(f.code, TaskErrorCode.INVALID);
  t.is(f.message, message);
});

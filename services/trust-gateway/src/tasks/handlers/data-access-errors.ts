import { Code, ConnectError } from "@connectrpc/connect";
import { TaskErrorCode, TaskFailure } from "../task-handler.js";

/**
 * Turns a data-access error into the failure reported to the hub. Only the validator's and policy's
 * messages (which speak of the researcher's SQL, never of patients) travel; the rest become categories.
 */
export function failureFromDataAccess(e: unknown): TaskFailure {
  const err = ConnectError.from(e);
  switch (err.code) {
    case Code.InvalidArgument:
    case Code.ResourceExhausted:
      return new TaskFailure(TaskErrorCode.INVALID, err.rawMessage, false, { cause: e });
    case Code.PermissionDenied:
      return new TaskFailure(TaskErrorCode.DENIED, "the trust's policy does not allow this query for this project", false, { cause: e });
    case Code.DeadlineExceeded:
      // data-access's own timeout message is fixed text that states the limit; any other deadline is ours.
      return new TaskFailure(
        TaskErrorCode.TIMEOUT,
        err.rawMessage.startsWith("the query ran longer than the trust's ") ? err.rawMessage : "the query ran past the trust's statement timeout",
        false,
        { cause: e },
      );
    case Code.Unavailable:
      return new TaskFailure(TaskErrorCode.UNAVAILABLE, "the trust's data-access service is unavailable", true, { cause: e });
    case Code.Unauthenticated:
      return new TaskFailure(TaskErrorCode.INTERNAL, "the trust's data-access service refused the gateway's internal key (check FLIP_TRUST_INTERNAL_KEY)", false, { cause: e });
    default:
      return new TaskFailure(TaskErrorCode.INTERNAL, "the trust's data-access service failed", false, { cause: e });
  }
}

import { useEffect, useState } from "react";
import { CohortService, type CohortQueryProblem } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { useClient } from "../../session/session-context.js";

export interface SqlCheck {
  /** The SQL the result below describes; differs from the text being edited while a check is due. */
  checkedSql: string;
  problems: CohortQueryProblem[] | undefined;
  error: unknown;
}

const DEBOUNCE_MS = 400;

/**
 * Checks `sql` with CheckCohortQuery once typing pauses for 400 ms; a check that newer text replaced is
 * aborted and its answer dropped. `checking` is derived from the text itself, so it is true from the
 * very render in which the text changed.
 */
export function useSqlCheck(sql: string): SqlCheck & { checking: boolean } {
  const cohorts = useClient(CohortService);
  const [result, setResult] = useState<SqlCheck>({ checkedSql: "", problems: undefined, error: undefined });
  useEffect(() => {
    if (sql.trim() === "") {
      setResult({ checkedSql: sql, problems: undefined, error: undefined });
      return;
    }
    const abort = new AbortController();
    const timer = setTimeout(() => {
      cohorts.checkCohortQuery({ sql }, { signal: abort.signal }).then(
        ({ problems }) => abort.signal.aborted || setResult({ checkedSql: sql, problems, error: undefined }),
        (error: unknown) => abort.signal.aborted || setResult({ checkedSql: sql, problems: undefined, error }),
      );
    }, DEBOUNCE_MS);
    return () => {
      clearTimeout(timer);
      abort.abort();
    };
  }, [sql, cohorts]);
  return { ...result, checking: result.checkedSql !== sql };
}

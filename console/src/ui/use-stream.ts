import { useEffect, useRef, useState, type DependencyList } from "react";
import { Code, ConnectError } from "@connectrpc/connect";

export interface StreamStatus {
  /** True while the stream is open and delivering. */
  live: boolean;
  /** The last error that ended the stream for good (not found, not allowed); undefined otherwise. */
  error: unknown;
  /** True once the stream ended by itself (the thing watched finished). */
  ended: boolean;
}

/** Codes after which opening the stream again would fail the same way. */
const FINAL = new Set([Code.NotFound, Code.PermissionDenied, Code.InvalidArgument, Code.Unauthenticated, Code.FailedPrecondition]);

/**
 * Follows a server stream while the component is shown: every message goes to `onMessage`; a stream cut
 * by the network or a hub restart is opened again (after 1, 2, 4 … up to 15 s), and the watch RPCs replay
 * what was missed. It stops when the stream ends by itself or fails for a reason a retry cannot fix.
 */
export function useStream<M>(open: (signal: AbortSignal) => AsyncIterable<M>, onMessage: (m: M) => void, deps: DependencyList): StreamStatus {
  const [status, setStatus] = useState<StreamStatus>({ live: false, error: undefined, ended: false });
  const openRef = useRef(open);
  const onMessageRef = useRef(onMessage);
  openRef.current = open;
  onMessageRef.current = onMessage;
  useEffect(() => {
    const abort = new AbortController();
    setStatus({ live: false, error: undefined, ended: false });
    void (async () => {
      let backoffMs = 1_000;
      while (!abort.signal.aborted) {
        try {
          for await (const m of openRef.current(abort.signal)) {
            if (abort.signal.aborted) return;
            setStatus((s) => (s.live ? s : { live: true, error: undefined, ended: false }));
            backoffMs = 1_000;
            onMessageRef.current(m);
          }
          if (!abort.signal.aborted) setStatus({ live: false, error: undefined, ended: true });
          return;
        } catch (e) {
          if (abort.signal.aborted) return;
          if (e instanceof ConnectError && FINAL.has(e.code)) {
            setStatus({ live: false, error: e, ended: false });
            return;
          }
          setStatus({ live: false, error: undefined, ended: false });
          await new Promise((r) => setTimeout(r, backoffMs));
          backoffMs = Math.min(backoffMs * 2, 15_000);
        }
      }
    })();
    return () => abort.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return status;
}

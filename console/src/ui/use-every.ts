import { useEffect, useRef, useState } from "react";

/** Calls `fn` every `ms` while `enabled` and the component is shown (e.g. reloads a list while something in it still runs). */
export function useEvery(ms: number, fn: () => void, enabled = true): void {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    if (!enabled) return;
    const timer = setInterval(() => fnRef.current(), ms);
    return () => clearInterval(timer);
  }, [ms, enabled]);
}

/** The current time, renewed every `ms`, so "… ago" texts stay true while a page stays open. */
export function useNow(ms: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEvery(ms, () => setNow(Date.now()));
  return now;
}

import { useEffect, useRef, useState, type RefObject } from "react";

/**
 * For a form whose submit can be refused field by field: call `refused()` after marking the fields
 * (aria-invalid), and the first one gets the focus, so a screen reader reads its error with it.
 */
export function useFocusFirstInvalid(): { formRef: RefObject<HTMLFormElement | null>; refused: () => void } {
  const formRef = useRef<HTMLFormElement>(null);
  const [refusals, setRefusals] = useState(0);
  useEffect(() => {
    if (refusals) formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }, [refusals]);
  return { formRef, refused: () => setRefusals((n) => n + 1) };
}

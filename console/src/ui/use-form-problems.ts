import { useEffect, useRef, useState, type Dispatch, type RefObject, type SetStateAction } from "react";

export interface FormProblems<F extends string> {
  /** What is wrong with each field, shown beside it. */
  problems: Partial<Record<F, string>>;
  setProblems: Dispatch<SetStateAction<Partial<Record<F, string>>>>;
  /** A refusal that names no field of the form, shown above its buttons. */
  formError: unknown;
  formRef: RefObject<HTMLFormElement | null>;
  /** Shows the form's own checks beside their fields; false, with the first such field focused, when any failed. */
  check(found: Partial<Record<F, string | undefined>>): boolean;
  /** The hub refused the submit: beside `field` when its error names one of the form's fields, else above the buttons. */
  refuse(error: unknown, field?: { field: F; message: string }): void;
}

/**
 * Problems of a form whose submit can be refused field by field (by its own checks, then by the hub).
 * After a refusal the first field with a problem (aria-invalid) gets the focus, so a screen reader reads
 * its error with it.
 */
export function useFormProblems<F extends string>(): FormProblems<F> {
  const [problems, setProblems] = useState<Partial<Record<F, string>>>({});
  const [formError, setFormError] = useState<unknown>();
  const formRef = useRef<HTMLFormElement>(null);
  const [refusals, setRefusals] = useState(0);
  useEffect(() => {
    if (refusals) formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }, [refusals]);
  return {
    problems,
    setProblems,
    formError,
    formRef,
    check(found) {
      setProblems(found as Partial<Record<F, string>>);
      setFormError(undefined);
      if (!Object.values(found).some(Boolean)) return true;
      setRefusals((n) => n + 1);
      return false;
    },
    refuse(error, field) {
      if (field) setProblems((old) => ({ ...old, [field.field]: field.message }));
      else setFormError(error);
      setRefusals((n) => n + 1);
    },
  };
}

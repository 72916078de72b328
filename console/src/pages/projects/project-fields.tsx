import { errorText, invalidField } from "../../api/errors.js";
import { Field } from "../../ui/field.js";
import { ErrorMessage } from "../../ui/page.js";

export interface ProjectText {
  name: string;
  description: string;
}

/**
 * A project's name and description, as the new-project form and the details editor both ask for them.
 * A refusal that names one of the two is shown beside it; any other above the form's buttons.
 */
export function ProjectTextFields({ value, onChange, error, errorPrefix }: { value: ProjectText; onChange: (v: ProjectText) => void; error: unknown; errorPrefix: string }) {
  const field = invalidField(error);
  const fieldError = (f: keyof ProjectText) => (field === f ? errorText(error) : undefined);
  return (
    <>
      <Field label="Name" hint="Unique among live projects." error={fieldError("name")}>
        {(p) => <input {...p} required maxLength={200} value={value.name} onChange={(e) => onChange({ ...value, name: e.target.value })} />}
      </Field>
      <Field label="Description" hint="What the study is for; the trusts' governance teams read it." error={fieldError("description")}>
        {(p) => <textarea {...p} rows={4} maxLength={4000} value={value.description} onChange={(e) => onChange({ ...value, description: e.target.value })} />}
      </Field>
      {field === "name" || field === "description" ? null : <ErrorMessage error={error} prefix={errorPrefix} />}
    </>
  );
}

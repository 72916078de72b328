import { useMemo, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { Code, ConnectError } from "@connectrpc/connect";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { ModelService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { errorText, invalidField } from "../../api/errors.js";
import { useClient } from "../../session/session-context.js";
import { Field } from "../../ui/field.js";
import { formatBytes } from "../../ui/format.js";
import { ErrorMessage, LiveStatus, Page } from "../../ui/page.js";
import { useLoad } from "../../ui/use-load.js";
import { newIdempotencyKey } from "./job-labels.js";
import { useFormProblems } from "../../ui/use-form-problems.js";
import "./training.css";

/** The hub's limits (services/hub/src/training/models.ts), checked here before anything is sent. */
const MAX_FILES_BYTES = 32 * 1024 * 1024;
const MAX_WEIGHTS_BYTES = 64 * 1024 * 1024;

/** Images the platform builds; any other image present at every trust works too. */
const KNOWN_IMAGES = ["flip/train-numpy:1", "flip/train-torch:1"];

type FieldName = "name" | "description" | "image" | "config" | "files" | "weights";

/** The form field a hub error is about: INVALID_ARGUMENT names it first, a size limit starts with it, a clash is the name's. */
const HUB_FIELDS: Record<string, FieldName> = {
  name: "name",
  description: "description",
  image: "image",
  config_json: "config",
  files: "files",
  "files.path": "files",
  initial_weights: "weights",
};

function fieldOfHubError(e: unknown): { field: FieldName; message: string } | undefined {
  if (!(e instanceof ConnectError)) return undefined;
  if (e.code === Code.AlreadyExists && /model named/.test(e.rawMessage)) return { field: "name", message: e.rawMessage };
  const named = invalidField(e) ?? (e.code === Code.ResourceExhausted ? /^([a-z_.]+):/.exec(e.rawMessage)?.[1] : undefined);
  const field = named ? HUB_FIELDS[named] : undefined;
  if (!field || !named) return undefined;
  const rest = e.rawMessage.slice(named.length).replace(/^:\s*/, "");
  if (!rest) return { field, message: errorText(e) };
  // "is not a safetensors file: …" reads as a sentence beside its field once it says what "is".
  return { field, message: rest.startsWith("is ") ? `This ${rest}` : rest[0]!.toUpperCase() + rest.slice(1) };
}

/** The parse error of a config, or undefined when it is a JSON object (empty means {}). */
function configProblem(text: string): string | undefined {
  if (text.trim() === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return `Not valid JSON: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return 'Must be a JSON object, e.g. {"local_epochs": 2}';
  return undefined;
}

const totalSize = (files: readonly File[]) => files.reduce((n, f) => n + f.size, 0);

/** A researcher adds a model to a project: the workload image, their files, a config, optional initial weights. */
export function NewModelPage() {
  const { projectId = "" } = useParams();
  const projects = useClient(ProjectService);
  const models = useClient(ModelService);
  const navigate = useNavigate();
  const project = useLoad((signal) => projects.getProject({ projectId }, { signal }), [projectId]);

  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [image, setImage] = useState(KNOWN_IMAGES[0]!);
  const [config, setConfig] = useState("{}");
  const [files, setFiles] = useState<File[]>([]);
  const [weights, setWeights] = useState<File>();
  const form = useFormProblems<FieldName>();
  const [busy, setBusy] = useState(false);
  // One key per distinct request: a retry of the same form (a lost answer) cannot create a second model.
  const idempotencyKey = useMemo(() => newIdempotencyKey(), [name, description, image, config, files, weights]);

  const filesBytes = totalSize(files);
  const filesProblem = filesBytes > MAX_FILES_BYTES ? `${formatBytes(filesBytes)} chosen; at most ${formatBytes(MAX_FILES_BYTES)}. Put data in the trust's cohort, not in the model.` : undefined;
  const weightsProblem = weights && weights.size > MAX_WEIGHTS_BYTES ? `${formatBytes(weights.size)}; at most ${formatBytes(MAX_WEIGHTS_BYTES)}.` : undefined;
  const clearError = (f: FieldName) => form.setProblems((e) => (e[f] ? { ...e, [f]: undefined } : e));

  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    const fine = form.check({
      name: name.trim() ? undefined : "Give the model a name.",
      config: configProblem(config),
      files: filesProblem,
      weights: weightsProblem,
    });
    if (!fine) return;
    setBusy(true);
    try {
      const content = await Promise.all(files.map(async (f) => ({ path: f.name, content: new Uint8Array(await f.arrayBuffer()) })));
      const initialWeights = weights ? new Uint8Array(await weights.arrayBuffer()) : new Uint8Array(0);
      const { model } = await models.createModel({ projectId, name: name.trim(), description: description.trim(), image: image.trim(), configJson: config, files: content, initialWeights, idempotencyKey });
      navigate(`/models/${model!.id}`);
    } catch (e) {
      form.refuse(e, fieldOfHubError(e));
      setBusy(false);
    }
  };

  const projectName = project.data?.project?.name;
  return (
    <Page
      title="New model"
      subtitle={
        <>
          In project <Link to={`/projects/${projectId}`}>{projectName ?? "…"}</Link>
        </>
      }
    >
      <ErrorMessage error={project.error} prefix="Could not load the project" />
      <form ref={form.formRef} className="form" onSubmit={(e) => void submit(e)} noValidate aria-describedby="new-model-lead">
        <p id="new-model-lead" className="hint">
          A model is a workload image every trust has, your files (handed to the workload read-only), and a config. Training runs at the trusts; only weights leave them.
        </p>
        <Field label="Name" error={form.problems.name}>
          {(p) => (
            <input
              {...p}
              required
              maxLength={100}
              autoComplete="off"
              value={name}
              onChange={(e) => {
                setName(e.target.value);
                clearError("name");
              }}
            />
          )}
        </Field>
        <Field label="Description" hint="What it predicts, from what (optional)." error={form.problems.description}>
          {(p) => (
            <textarea
              {...p}
              rows={3}
              maxLength={2000}
              className="training-short-text"
              value={description}
              onChange={(e) => {
                setDescription(e.target.value);
                clearError("description");
              }}
            />
          )}
        </Field>
        <Field label="Workload image" hint="A container image present at every trust, e.g. flip/train-numpy:1 or flip/train-torch:1." error={form.problems.image}>
          {(p) => (
            <>
              <input
                {...p}
                list="training-images"
                required
                autoComplete="off"
                spellCheck={false}
                value={image}
                onChange={(e) => {
                  setImage(e.target.value);
                  clearError("image");
                }}
              />
              <datalist id="training-images">
                {KNOWN_IMAGES.map((i) => (
                  <option key={i} value={i} />
                ))}
              </datalist>
            </>
          )}
        </Field>
        <Field label="Config (JSON)" hint="Handed to the workload as it is, e.g. epochs and learning rate; empty means {}." error={form.problems.config}>
          {(p) => (
            <textarea
              {...p}
              className="code"
              rows={8}
              spellCheck={false}
              value={config}
              onChange={(e) => {
                setConfig(e.target.value);
                clearError("config");
              }}
              onBlur={() => form.setProblems((old) => ({ ...old, config: configProblem(config) }))}
            />
          )}
        </Field>
        <Field label="Files" hint={`Your training code and notes (at most ${formatBytes(MAX_FILES_BYTES)} in all); each keeps its name.`} error={form.problems.files ?? filesProblem}>
          {(p) => (
            <input
              {...p}
              type="file"
              multiple
              onChange={(e) => {
                setFiles([...(e.target.files ?? [])]);
                clearError("files");
              }}
            />
          )}
        </Field>
        {files.length ? (
          <div className="training-chosen">
            <ul aria-label="Chosen files">
              {files.map((f) => (
                <li key={f.name}>
                  <code>{f.name}</code> <span className="hint">{formatBytes(f.size)}</span>
                </li>
              ))}
            </ul>
            <p className="hint">
              {files.length} file{files.length === 1 ? "" : "s"}, {formatBytes(filesBytes)} in all
            </p>
          </div>
        ) : null}
        <Field label="Initial weights (optional)" hint={`A .safetensors file (at most ${formatBytes(MAX_WEIGHTS_BYTES)}); without one the workload initialises the weights.`} error={form.problems.weights ?? weightsProblem}>
          {(p) => (
            <input
              {...p}
              type="file"
              accept=".safetensors"
              onChange={(e) => {
                setWeights(e.target.files?.[0]);
                clearError("weights");
              }}
            />
          )}
        </Field>
        <ErrorMessage error={form.formError} prefix="The model was not created" />
        <div className="form-row">
          <button type="submit" className="button button-primary" disabled={busy}>
            {busy ? "Creating model…" : "Create model"}
          </button>
          <Link className="button" to={`/projects/${projectId}`}>
            Cancel
          </Link>
        </div>
        <LiveStatus>{busy ? `Sending ${formatBytes(filesBytes + (weights?.size ?? 0))} to the hub…` : ""}</LiveStatus>
      </form>
    </Page>
  );
}

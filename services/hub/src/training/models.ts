import { MAX_IDEMPOTENCY_KEY_LENGTH } from "../domain/ids.js";
import { create, toBinary } from "@bufbuild/protobuf";
import type { EntityManager } from "@mikro-orm/postgresql";
import { ModelBundleSchema, type ModelFile } from "@flip/gen/flip/hub/v1/training_pb.js";
import { appendAudit } from "../audit/chain.js";
import { isAdmin, type Principal } from "../auth/principal.js";
import type { ArtifactDeps } from "../artifacts/deps.js";
import { writeHubArtifact } from "../artifacts/hub-artifacts.js";
import { canSeeProject, principalId, visibleProject } from "../projects/access.js";
import { ProjectMember } from "../projects/entities.js";
import { AlreadyExistsError, InvalidInputError, NotFoundError, PermissionError, TooLargeError } from "../domain/errors.js";
import type { Page } from "../domain/paging.js";
import { Project } from "../projects/entities.js";
import { parseSafetensorsHeader, SafetensorsError } from "@flip/shared/safetensors/safetensors.js";
import { checkId, findModel, type ModelRow } from "./rows.js";

export const MAX_BUNDLE_BYTES = 32 * 1024 * 1024;
export const MAX_BUNDLE_FILES = 1000;
export const MAX_INITIAL_WEIGHTS_BYTES = 64 * 1024 * 1024;
export const MAX_CONFIG_BYTES = 64 * 1024;

export interface NewModel {
  projectId: string;
  name: string;
  description: string;
  image: string;
  configJson: string;
  files: ModelFile[];
  initialWeights: Uint8Array;
  idempotencyKey: string;
}

const IMAGE_RE = /^[a-z0-9][a-z0-9._\/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

export function validateImage(image: string): string {
  const v = image.trim();
  if (!v) throw new InvalidInputError("image", "give the workload's container image, e.g. flip/train-numpy:1");
  if (v.length > 255 || !IMAGE_RE.test(v)) throw new InvalidInputError("image", `"${v}" is not an image reference (e.g. flip/train-numpy:1 or registry.example/org/name@sha256:…)`);
  return v;
}

export function validateConfigJson(raw: string): string {
  const text = raw.trim() === "" ? "{}" : raw;
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw new TooLargeError(`config_json: at most ${MAX_CONFIG_BYTES / 1024} KiB`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new InvalidInputError("config_json", `is not valid JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new InvalidInputError("config_json", "must be a JSON object, e.g. {\"local_epochs\": 2}");
  return text;
}

/** A bundle path: relative, "/"-separated, no "." or ".." segments, printable. */
export function validateBundlePath(p: string): string {
  const bad = (why: string) => new InvalidInputError("files.path", `"${p.slice(0, 200)}" ${why}`);
  if (p === "" || p.length > 255) throw bad("must be 1 to 255 characters");
  if (p.startsWith("/") || p.includes("\\")) throw bad("must be a relative path with '/' separators");
  if (/[\u0000-\u001f]/.test(p)) throw bad("contains control characters");
  for (const seg of p.split("/")) {
    if (seg === "" || seg === "." || seg === "..") throw bad("must not contain empty, '.' or '..' segments");
  }
  return p;
}

function validateName(name: string): string {
  const v = name.trim();
  if (v.length < 1 || v.length > 100) throw new InvalidInputError("name", "must be 1 to 100 characters");
  return v;
}

/** Who may add models to a project: its owner, its members, Admin. */
async function mayAddModel(em: EntityManager, caller: Principal, project: Project): Promise<boolean> {
  if (isAdmin(caller)) return true;
  const me = principalId(caller);
  return project.ownerId === me || (await em.count(ProjectMember, { projectId: project.id, userId: me })) > 0;
}

/** Who may change a model or run jobs on it: the model's owner, the project's owner, Admin. */
export function mayModifyModel(caller: Principal, model: ModelRow, project: Project): boolean {
  const me = principalId(caller);
  return isAdmin(caller) || model.owner_id === me || project.ownerId === me;
}

/** A live model the caller may see (its project is visible); anything else reads as not found. */
export async function visibleModel(em: EntityManager, caller: Principal, modelId: string, field = "model_id"): Promise<{ model: ModelRow; project: Project }> {
  checkId(modelId, field, "model");
  const model = await findModel(em, modelId);
  if (!model) throw new NotFoundError("model", modelId);
  const project = await em.findOne(Project, { id: model.project_id, deletedAt: null });
  if (!project || !(await canSeeProject(em, caller, project))) throw new NotFoundError("model", modelId);
  return { model, project };
}

export async function modifiableModel(em: EntityManager, caller: Principal, modelId: string): Promise<{ model: ModelRow; project: Project }> {
  const found = await visibleModel(em, caller, modelId);
  if (!mayModifyModel(caller, found.model, found.project)) throw new PermissionError("only the model's owner, the project's owner or an Admin may change this model or run jobs on it");
  if (found.model.deleted_at) throw new NotFoundError("model", modelId);
  return found;
}

function validateFiles(files: ModelFile[]): ModelFile[] {
  if (files.length > MAX_BUNDLE_FILES) throw new TooLargeError(`files: at most ${MAX_BUNDLE_FILES} files per model`);
  const seen = new Set<string>();
  let total = 0;
  for (const f of files) {
    validateBundlePath(f.path);
    if (seen.has(f.path)) throw new InvalidInputError("files.path", `"${f.path}" is given twice`);
    seen.add(f.path);
    total += f.content.length;
  }
  if (total > MAX_BUNDLE_BYTES) throw new TooLargeError(`files: ${(total / 1048576).toFixed(1)} MiB given, at most ${MAX_BUNDLE_BYTES / 1048576} MiB; put data in the trust's cohort or images, not in the model`);
  return files;
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/**
 * Creates a model: validates everything first, stores the researcher's files as one checksummed bundle
 * artifact and the initial weights (validated safetensors) as another, then the model row and its audit
 * entry. A retry with the same idempotency key returns the first call's model.
 */
export async function createModel(em: EntityManager, artifacts: ArtifactDeps, caller: Principal, input: NewModel): Promise<ModelRow> {
  const project = await visibleProject(em, caller, input.projectId);
  if (!(await mayAddModel(em, caller, project))) throw new PermissionError("only the project's owner, its members or an Admin may add models to it");
  const me = principalId(caller);
  const key = input.idempotencyKey.trim();
  if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) throw new InvalidInputError("idempotency_key", `must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`);
  if (key) {
    const [existing] = await em.execute<ModelRow[]>("select * from model where owner_id = ? and idempotency_key = ?", [me, key]);
    if (existing) return existing;
  }
  const name = validateName(input.name);
  const description = input.description.trim();
  if (description.length > 2000) throw new InvalidInputError("description", "must be at most 2000 characters");
  const image = validateImage(input.image);
  const configJson = validateConfigJson(input.configJson);
  const files = validateFiles(input.files);
  if (input.initialWeights.length > MAX_INITIAL_WEIGHTS_BYTES) throw new TooLargeError(`initial_weights: at most ${MAX_INITIAL_WEIGHTS_BYTES / 1048576} MiB`);
  if (input.initialWeights.length > 0) {
    try {
      parseSafetensorsHeader(input.initialWeights);
    } catch (e) {
      if (e instanceof SafetensorsError) throw new InvalidInputError("initial_weights", `is not a safetensors file: ${e.message}`);
      throw e;
    }
  }
  const [clash] = await em.execute<{ id: string }[]>("select id from model where project_id = ? and lower(name) = lower(?) and deleted_at is null", [project.id, name]);
  if (clash) throw new AlreadyExistsError(`a model named "${name}" already exists in this project (${clash.id})`);

  const actor = caller.kind === "user" ? `user:${caller.userId}` : caller.kind;
  const bundle = files.length
    ? await writeHubArtifact(artifacts, { purpose: "model-bundle", actor, data: once(toBinary(ModelBundleSchema, create(ModelBundleSchema, { files }))) })
    : undefined;
  const weights = input.initialWeights.length ? await writeHubArtifact(artifacts, { purpose: "initial-weights", actor, data: once(input.initialWeights) }) : undefined;
  const id = crypto.randomUUID();
  return await em.transactional(async (tx) => {
    const [row] = await tx.execute<ModelRow[]>(
      `insert into model (id, project_id, name, description, owner_id, image, config_json, bundle_artifact_id, bundle_sha256, bundle_size_bytes, file_paths, initial_weights_artifact_id, idempotency_key, created_at)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?, ?) returning *`,
      [
        id,
        project.id,
        name,
        description,
        me,
        image,
        configJson,
        bundle?.id ?? null,
        bundle?.sha256 ?? null,
        bundle?.sizeBytes ?? 0,
        JSON.stringify(files.map((f) => f.path)),
        weights?.id ?? null,
        key || null,
        new Date(),
      ],
    );
    await appendAudit(tx, {
      actor,
      action: "model.created",
      target: `model:${id}`,
      after: { projectId: project.id, name, image, files: files.length, bundleSha256: bundle?.sha256 ?? null, initialWeights: weights?.id ?? null },
    });
    return row!;
  });
}

export async function listModels(em: EntityManager, caller: Principal, projectId: string, page: Page): Promise<ModelRow[]> {
  const project = await visibleProject(em, caller, projectId);
  return await em.execute<ModelRow[]>("select * from model where project_id = ? and deleted_at is null order by created_at, id offset ? limit ?", [project.id, page.offset, page.limit]);
}

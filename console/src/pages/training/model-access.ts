import type { Project } from "@flip/gen/flip/hub/v1/projects_pb.js";
import type { Model } from "@flip/gen/flip/hub/v1/training_pb.js";
import type { User } from "@flip/gen/flip/hub/v1/users_pb.js";
import { isAdmin } from "../../session/roles.js";

/**
 * Whether the user may run jobs on a model and abort them, as the hub decides it (mayModifyModel in
 * services/hub/src/training/models.ts): the model's owner, the project's owner, an Admin. The console only
 * hides what would be refused; the hub still checks.
 */
export function mayRunJobs(user: User, model: Pick<Model, "ownerId" | "deleted">, project: Pick<Project, "ownerId"> | undefined): boolean {
  if (model.deleted) return false;
  return isAdmin(user) || model.ownerId === user.id || project?.ownerId === user.id;
}

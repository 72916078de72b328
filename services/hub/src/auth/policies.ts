import type { DescService } from "@bufbuild/protobuf";
import { TrustService } from "@flip/gen/flip/hub/v1/trusts_pb.js";
import { TaskService } from "@flip/gen/flip/hub/v1/tasks_pb.js";
import { AuthService, UserService } from "@flip/gen/flip/hub/v1/users_pb.js";
import { ProjectService } from "@flip/gen/flip/hub/v1/projects_pb.js";
import { ImagingService } from "@flip/gen/flip/hub/v1/imaging_pb.js";
import { CohortService } from "@flip/gen/flip/hub/v1/cohorts_pb.js";
import { ModelService, JobService } from "@flip/gen/flip/hub/v1/training_pb.js";
import { AuditService } from "@flip/gen/flip/hub/v1/audit_pb.js";
import { AdminService } from "@flip/gen/flip/hub/v1/admin_pb.js";
import { LinkService, ArtifactService } from "@flip/gen/flip/link/v1/link_pb.js";

/**
 * Who may call an RPC, checked before the handler runs:
 * - `public`: anyone, signed in or not;
 * - `signed-in`: any authenticated user (the handler may narrow further, e.g. by project membership);
 * - `admin`: Admin role or the bootstrap admin token;
 * - `trust-key`: a trust gateway; the link module authenticates the trust API key itself.
 */
export type Policy = "public" | "signed-in" | "admin" | "trust-key";

/** Every hub service, for routing, reflection and the policy-completeness test. */
export const hubServices: DescService[] = [
  TrustService,
  TaskService,
  AuthService,
  UserService,
  ProjectService,
  CohortService,
  ImagingService,
  ModelService,
  JobService,
  AuditService,
  AdminService,
  LinkService,
  ArtifactService,
];

const admin: Policy = "admin";
const signedIn: Policy = "signed-in";

/** One explicit policy per RPC, keyed "package.Service/Method". An RPC missing here is refused. */
export const policies: Readonly<Record<string, Policy>> = {
  "flip.hub.v1.TrustService/RegisterTrust": admin,
  "flip.hub.v1.TrustService/ListTrusts": signedIn,
  "flip.hub.v1.TrustService/GetTrust": signedIn,
  "flip.hub.v1.TrustService/RotateTrustKey": admin,
  "flip.hub.v1.TrustService/DisableTrust": admin,
  "flip.hub.v1.TrustService/EnableTrust": admin,
  "flip.hub.v1.TrustService/ListTrustActivity": signedIn,

  "flip.hub.v1.TaskService/CreateEchoTask": admin,
  "flip.hub.v1.TaskService/CreateEchoTasks": admin,
  "flip.hub.v1.TaskService/GetTask": signedIn,
  "flip.hub.v1.TaskService/ListTasks": signedIn,
  "flip.hub.v1.TaskService/CancelTask": admin,

  "flip.hub.v1.AuthService/Login": "public",
  "flip.hub.v1.AuthService/Refresh": "public",
  "flip.hub.v1.AuthService/Logout": "public",
  "flip.hub.v1.AuthService/GetSignInOptions": "public",
  "flip.hub.v1.AuthService/BeginTotpEnrollment": signedIn,
  "flip.hub.v1.AuthService/ConfirmTotpEnrollment": signedIn,
  "flip.hub.v1.AuthService/CreateApiToken": signedIn,
  "flip.hub.v1.AuthService/ListApiTokens": signedIn,
  "flip.hub.v1.AuthService/RevokeApiToken": signedIn,
  "flip.hub.v1.AuthService/WhoAmI": signedIn,

  "flip.hub.v1.UserService/CreateUser": admin,
  "flip.hub.v1.UserService/ListUsers": admin,
  "flip.hub.v1.UserService/GetUser": signedIn,
  "flip.hub.v1.UserService/GrantRole": admin,
  "flip.hub.v1.UserService/RevokeRole": admin,
  "flip.hub.v1.UserService/SetUserDisabled": admin,
  "flip.hub.v1.UserService/ResetTotp": admin,
  "flip.hub.v1.UserService/SetTotpRequired": admin,

  "flip.hub.v1.ProjectService/CreateProject": signedIn,
  "flip.hub.v1.ProjectService/GetProject": signedIn,
  "flip.hub.v1.ProjectService/ListProjects": signedIn,
  "flip.hub.v1.ProjectService/UpdateProject": signedIn,
  "flip.hub.v1.ProjectService/DeleteProject": signedIn,
  "flip.hub.v1.ProjectService/AddProjectMember": signedIn,
  "flip.hub.v1.ProjectService/RemoveProjectMember": signedIn,
  "flip.hub.v1.ProjectService/StageProject": signedIn,
  "flip.hub.v1.ProjectService/UnstageProject": signedIn,
  "flip.hub.v1.ProjectService/DecideProject": signedIn,
  "flip.hub.v1.ProjectService/ListTrustDecisions": signedIn,
  "flip.hub.v1.ProjectService/WithdrawApproval": signedIn,

  "flip.hub.v1.CohortService/SubmitCohortQuery": signedIn,
  "flip.hub.v1.CohortService/GetCohortQuery": signedIn,
  "flip.hub.v1.CohortService/WatchCohortQuery": signedIn,
  "flip.hub.v1.CohortService/ListCohortQueries": signedIn,
  "flip.hub.v1.CohortService/CheckCohortQuery": signedIn,

  "flip.hub.v1.ImagingService/GetImagingStatus": signedIn,
  "flip.hub.v1.ImagingService/ImportImaging": signedIn,

  "flip.hub.v1.ModelService/CreateModel": signedIn,
  "flip.hub.v1.ModelService/GetModel": signedIn,
  "flip.hub.v1.ModelService/ListModels": signedIn,
  "flip.hub.v1.ModelService/DeleteModel": signedIn,

  "flip.hub.v1.JobService/CreateJob": signedIn,
  "flip.hub.v1.JobService/GetJob": signedIn,
  "flip.hub.v1.JobService/ListJobs": signedIn,
  "flip.hub.v1.JobService/AbortJob": signedIn,
  "flip.hub.v1.JobService/WatchJob": signedIn,
  "flip.hub.v1.JobService/ListMetrics": signedIn,
  "flip.hub.v1.JobService/DownloadWeights": signedIn,

  "flip.hub.v1.AuditService/ListAuditEntries": admin,
  "flip.hub.v1.AuditService/VerifyAuditChain": admin,

  "flip.hub.v1.AdminService/GetDeploymentMode": signedIn,
  "flip.hub.v1.AdminService/SetDeploymentMode": admin,
  "flip.hub.v1.AdminService/RotateSigningKey": admin,

  "flip.link.v1.LinkService/Connect": "trust-key",
  "flip.link.v1.ArtifactService/Upload": "trust-key",
  "flip.link.v1.ArtifactService/GetUploadStatus": "trust-key",
  "flip.link.v1.ArtifactService/Download": "trust-key",
};

/** Services outside the policy table that anyone may call (health checks and reflection). */
export const publicServices = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]);

/** The policy of an RPC ("package.Service/Method"), the public services' included; undefined when it has none. */
export function policyOf(rpc: string): Policy | undefined {
  if (publicServices.has(rpc.slice(0, rpc.lastIndexOf("/")))) return "public";
  return policies[rpc];
}

import { create, createRegistry, toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  ServerReflection,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "@flip/gen/grpc/reflection/v1/reflection_pb.js";

const NOT_FOUND = 5;
const UNIMPLEMENTED = 12;

/** Every file a file depends on, dependencies first, each once. */
function withDependencies(file: DescFile, seen = new Set<string>(), out: DescFile[] = []): DescFile[] {
  if (seen.has(file.name)) return out;
  seen.add(file.name);
  for (const dep of file.dependencies) withDependencies(dep, seen, out);
  out.push(file);
  return out;
}

/** gRPC server reflection (v1) for the given services, so `buf curl` and grpcurl work with no schema. */
export function registerReflection(router: ConnectRouter, services: DescService[]): void {
  const files = new Map<string, DescFile>();
  for (const s of services) for (const f of withDependencies(s.file)) files.set(f.name, f);
  const registry = createRegistry(...files.values());

  const fileResponse = (file: DescFile): ServerReflectionResponse["messageResponse"] => ({
    case: "fileDescriptorResponse",
    value: {
      $typeName: "grpc.reflection.v1.FileDescriptorResponse",
      fileDescriptorProto: withDependencies(file).reverse().map((f) => toBinary(FileDescriptorProtoSchema, f.proto)),
    },
  });
  const error = (errorCode: number, errorMessage: string): ServerReflectionResponse["messageResponse"] => ({
    case: "errorResponse",
    value: { $typeName: "grpc.reflection.v1.ErrorResponse", errorCode, errorMessage },
  });

  const answer = (req: ServerReflectionRequest): ServerReflectionResponse["messageResponse"] => {
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: {
            $typeName: "grpc.reflection.v1.ListServiceResponse",
            service: services.map((s) => ({ $typeName: "grpc.reflection.v1.ServiceResponse", name: s.typeName })),
          },
        };
      case "fileByFilename": {
        const f = files.get(r.value);
        return f ? fileResponse(f) : error(NOT_FOUND, `file not found: ${r.value}`);
      }
      case "fileContainingSymbol": {
        const symbol = r.value.replace(/^\./, "");
        const direct = registry.get(symbol);
        // A method name "pkg.Service.Method" resolves through its service.
        const owner = direct ?? registry.getService(symbol.slice(0, symbol.lastIndexOf(".")));
        return owner ? fileResponse(owner.file) : error(NOT_FOUND, `symbol not found: ${r.value}`);
      }
      case "allExtensionNumbersOfType":
        return {
          case: "allExtensionNumbersResponse",
          value: { $typeName: "grpc.reflection.v1.ExtensionNumberResponse", baseTypeName: r.value, extensionNumber: [] },
        };
      default:
        return error(UNIMPLEMENTED, "request kind not supported");
    }
  };

  router.service(ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield create(ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req, messageResponse: answer(req) });
      }
    },
  });
}

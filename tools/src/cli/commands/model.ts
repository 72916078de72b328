import { toJson } from "@bufbuild/protobuf";
import { ModelSchema, ModelService, type Model } from "@flip/gen/flip/hub/v1/training_pb.js";
import { requireOption, stringOption, type CliCommand } from "../command.js";
import { bytesLabel, describeModel, modelsTable } from "../training/describe.js";
import { mib, readBundleDir, readConfigFile, readWeightsFile, type Bundle } from "../training/model-bundle.js";
import { createOnce } from "../training/retry-once.js";
import { oneId } from "./project.js";

const modelJson = (m: Model | undefined) => (m ? toJson(ModelSchema, m) : null);

export const modelCommands: CliCommand[] = [
  {
    path: ["model", "create"],
    summary:
      "Create a model in a project: a workload image present at every trust, the files under --files (hidden entries such as .git " +
      "and .env, and __pycache__, are left out; at most 32 MiB), a JSON config, and optional initial weights (safetensors, at most 64 MiB).",
    usage: "--project <id> --name <name> --image <image ref> [--files <dir>] [--config <config.json>] [--weights <init.safetensors>] [--description <text>]",
    options: {
      project: { type: "string" },
      name: { type: "string" },
      image: { type: "string" },
      files: { type: "string" },
      config: { type: "string" },
      weights: { type: "string" },
      description: { type: "string" },
    },
    async run(ctx, args) {
      const projectId = requireOption(args, "project");
      const name = requireOption(args, "name");
      const image = requireOption(args, "image");
      const dir = stringOption(args, "files");
      const bundle: Bundle | undefined = dir ? readBundleDir(dir) : undefined;
      const configJson = args.values.config ? readConfigFile(stringOption(args, "config")) : "";
      const initialWeights = args.values.weights ? readWeightsFile(stringOption(args, "weights")) : new Uint8Array(0);
      if (bundle?.skipped.length) ctx.stderr.write(`left out ${bundle.skipped.length} hidden entr${bundle.skipped.length === 1 ? "y" : "ies"}: ${bundle.skipped.slice(0, 10).join(", ")}${bundle.skipped.length > 10 ? ", …" : ""}\n`);
      if (!ctx.json && bundle) ctx.stderr.write(`uploading ${bundle.files.length} files (${mib(bundle.totalBytes)})${initialWeights.length ? ` and ${mib(initialWeights.length)} of initial weights` : ""}\n`);
      const client = ctx.client(ModelService);
      const { model } = await createOnce(
        (idempotencyKey) =>
          client.createModel({ projectId, name, image, description: stringOption(args, "description"), configJson, files: bundle?.files ?? [], initialWeights, idempotencyKey }),
        (e) => ctx.stderr.write(`the hub did not answer (${e.rawMessage}); retrying once with the same idempotency key\n`),
      );
      ctx.print(
        model
          ? [
              `created model ${model.name} (${model.id})`,
              `image: ${model.image}`,
              model.filePaths.length ? `files: ${model.filePaths.length} (${bytesLabel(model.bundleSizeBytes)}), bundle sha256 ${model.bundleSha256}` : "files: none",
              `initial weights: ${model.initialWeightsArtifactId ? "yes" : "none"}`,
            ].join("\n")
          : "-",
        { model: modelJson(model) },
      );
    },
  },
  {
    path: ["model", "list"],
    summary: "List a project's models.",
    usage: "--project <id>",
    options: { project: { type: "string" } },
    async run(ctx, args) {
      const { models } = await ctx.client(ModelService).listModels({ projectId: requireOption(args, "project"), page: { pageSize: 500 } });
      ctx.print(models.length === 0 ? "no models" : modelsTable(models), { models: models.map(modelJson) });
    },
  },
  {
    path: ["model", "get"],
    summary: "Show a model: its image, files, config and initial weights.",
    usage: "<model id>",
    positionals: true,
    async run(ctx, args) {
      const { model } = await ctx.client(ModelService).getModel({ modelId: oneId(args.positionals, "model") });
      ctx.print(model ? describeModel(model) : "-", { model: modelJson(model) });
    },
  },
  {
    path: ["model", "delete"],
    summary: "Delete a model; a job of it that is queued or running is aborted.",
    usage: "<model id>",
    positionals: true,
    async run(ctx, args) {
      const modelId = oneId(args.positionals, "model");
      await ctx.client(ModelService).deleteModel({ modelId });
      ctx.print(`model ${modelId} deleted`, { modelId, deleted: true });
    },
  },
];

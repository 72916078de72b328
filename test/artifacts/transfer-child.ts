/**
 * A gateway-side transfer in a process of its own, so a test can measure the hub's memory without the
 * client's buffers in the same process. Usage: transfer-child.ts upload|download <hubUrl> <file> [artifactId]
 * (the API key comes from the environment variable FLIP_TRUST_KEY, so it never shows in a process list).
 * Prints the result as one JSON line.
 */
import { createArtifactClient } from "@flip/trust-gateway/artifacts/client.js";
import { downloadArtifact } from "@flip/trust-gateway/artifacts/download.js";
import { uploadArtifact } from "@flip/trust-gateway/artifacts/upload.js";

const [mode, baseUrl, file, artifactId] = process.argv.slice(2);
const apiKey = process.env.FLIP_TRUST_KEY;
if (!baseUrl || !file || !apiKey || (mode !== "upload" && mode !== "download") || (mode === "download" && !artifactId)) {
  process.stderr.write("usage: FLIP_TRUST_KEY=... transfer-child.ts upload|download <hubUrl> <file> [artifactId]\n");
  process.exit(2);
}
const client = createArtifactClient({ baseUrl, apiKey });
const result = mode === "upload" ? await uploadArtifact(client, { purpose: "model-update", source: file }) : await downloadArtifact(client, artifactId!, file);
process.stdout.write(`${JSON.stringify(result)}\n`);

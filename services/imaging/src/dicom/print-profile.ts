/**
 * Prints the de-identification profile as Markdown (the table in services/imaging/README.md):
 *   node --import tsx services/imaging/src/dicom/print-profile.ts
 */
import { profileMarkdownTable } from "./profile.js";

process.stdout.write(profileMarkdownTable() + "\n");

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import test from "ava";
import dcmjs from "dcmjs";
import type { data } from "dcmjs";
import { syntheticStudy } from "../testing/synthetic-study.js";
import { DeidentificationError, DEIDENTIFICATION_METHOD, deidentify, patientPseudonym, PSEUDONYM_PATTERN, remapUid, type DeidentifyContext } from "./deidentify.js";
import { writePart10 } from "./part10-writer.js";
import { IDENTIFYING_SIDECAR_FIELDS } from "./profile.js";
import { profileViolations } from "./profile-check.js";

const run = promisify(execFile);
const ctx: DeidentifyContext = { projectId: "project-a", key: new Uint8Array(32).map((_, i) => i * 7 + 1) };
const otherProject: DeidentifyContext = { ...ctx, projectId: "project-b" };
const jane = { accessionNumber: "ACC3001", patientId: "PID3001", patientName: "DOE^JANE", institutionName: "North General Hospital" };

function read(bytes: Uint8Array): data.DicomDict {
  return dcmjs.data.DicomMessage.readFile(new Uint8Array(bytes).buffer);
}

function value(ds: data.DicomDataset, tag: string): unknown {
  return ds[tag]?.Value?.[0];
}

function pixelBytes(bytes: Uint8Array): Uint8Array {
  const v = read(bytes).dict["7FE00010"]!.Value![0] as ArrayBuffer | Uint8Array;
  return v instanceof ArrayBuffer ? new Uint8Array(v) : v;
}

/** Tools from dcmtk and dcm2niix, when installed; tests that need one are skipped without it. */
const tool = (name: string) => (existsSync(`/usr/bin/${name}`) ? test : test.skip);

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "flip-deid-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("every instance of a study complies with the profile and holds none of the original's identifying values", (t) => {
  const files = syntheticStudy({ ...jane, slices: 6, series: 2 });
  for (const file of files) t.deepEqual(profileViolations(deidentify(file, ctx).bytes, file), []);
});

test("de-identified files record that identity was removed, and how", (t) => {
  const { dict } = read(deidentify(syntheticStudy({ ...jane, slices: 1 })[0]!, ctx).bytes);
  t.is(value(dict, "00120062"), "YES");
  t.is(value(dict, "00120063"), DEIDENTIFICATION_METHOD);
  const code = value(dict, "00120064") as data.DicomDataset;
  t.is(value(code, "00080100"), "113100");
  t.is(value(code, "00080102"), "DCM");
});

test("patient name and id become the pseudonym the function returns", (t) => {
  const d = deidentify(syntheticStudy({ ...jane, slices: 1 })[0]!, ctx);
  t.regex(d.patientPseudonym, PSEUDONYM_PATTERN);
  t.is(d.patientPseudonym, patientPseudonym("PID3001", ctx));
  const { dict } = read(d.bytes);
  t.is(value(dict, "00100020"), d.patientPseudonym);
  t.deepEqual(value(dict, "00100010"), { Alphabetic: d.patientPseudonym });
});

test("the same input, project and key give byte-identical output", (t) => {
  const a = syntheticStudy({ ...jane, slices: 3 }).map((f) => deidentify(f, ctx).bytes);
  const b = syntheticStudy({ ...jane, slices: 3 }).map((f) => deidentify(f, ctx).bytes);
  t.deepEqual(a, b);
});

test("the same patient in two studies gets the same pseudonym; another patient another one", (t) => {
  const first = deidentify(syntheticStudy({ ...jane, slices: 1, seed: 1 })[0]!, ctx);
  const second = deidentify(syntheticStudy({ ...jane, accessionNumber: "ACC3002", slices: 1, seed: 2 })[0]!, ctx);
  const other = deidentify(syntheticStudy({ ...jane, patientId: "PID3999", accessionNumber: "ACC3003", slices: 1 })[0]!, ctx);
  t.is(first.patientPseudonym, second.patientPseudonym);
  t.not(first.studyUid, second.studyUid);
  t.not(first.patientPseudonym, other.patientPseudonym);
});

test("another project gets other pseudonyms and UIDs for the same image", (t) => {
  const file = syntheticStudy({ ...jane, slices: 1 })[0]!;
  const a = deidentify(file, ctx);
  const b = deidentify(file, otherProject);
  t.not(a.patientPseudonym, b.patientPseudonym);
  t.not(a.studyUid, b.studyUid);
  t.not(a.seriesUid, b.seriesUid);
  t.not(a.sopInstanceUid, b.sopInstanceUid);
});

test("UIDs stay consistent: one study UID, one per series, the meta header and references follow", (t) => {
  const files = syntheticStudy({ ...jane, slices: 4, series: 2 });
  const out = files.map((f) => deidentify(f, ctx));
  t.is(new Set(out.map((d) => d.studyUid)).size, 1);
  t.is(new Set(out.map((d) => d.seriesUid)).size, 2);
  t.is(new Set(out.map((d) => d.sopInstanceUid)).size, 8);
  for (const [i, d] of out.entries()) {
    const { meta, dict } = read(d.bytes);
    t.is(value(dict, "0020000D"), d.studyUid);
    t.is(value(dict, "0020000E"), d.seriesUid);
    t.is(value(dict, "00080018"), d.sopInstanceUid);
    t.is(value(meta, "00020003"), d.sopInstanceUid);
    t.is(d.seriesUid, out[i < 4 ? 0 : 4]!.seriesUid);
    t.regex(d.studyUid, /^2\.25\.\d+$/);
    t.true(d.sopInstanceUid.length <= 64);
    if (i % 4 > 0) {
      const reference = value(dict, "00081140") as data.DicomDataset;
      t.is(value(reference, "00081155"), out[i < 4 ? 0 : 4]!.sopInstanceUid, "a reference to the series' first slice points at its new UID");
    }
  }
});

test("what the file came from is returned, for the imaging service's own index", (t) => {
  const file = syntheticStudy({ ...jane, slices: 1 })[0]!;
  const { dict } = read(file);
  const d = deidentify(file, ctx);
  t.deepEqual(d.original, {
    studyUid: value(dict, "0020000D"),
    seriesUid: value(dict, "0020000E"),
    sopInstanceUid: value(dict, "00080018"),
    accessionNumber: "ACC3001",
    patientId: "PID3001",
  });
  t.is(d.modality, "CT");
  t.is(d.studyUid, remapUid(String(value(dict, "0020000D")), ctx));
});

test("pixel data, geometry and rescale are kept unchanged", (t) => {
  const file = syntheticStudy({ ...jane, slices: 2 })[1]!;
  const out = deidentify(file, ctx).bytes;
  t.deepEqual(pixelBytes(out), pixelBytes(file));
  const before = read(file).dict;
  const after = read(out).dict;
  for (const tag of ["00200032", "00200037", "00280030", "00180050", "00201041", "00281052", "00281053", "00280103", "00200013", "00080060", "00080016"]) {
    t.deepEqual(after[tag]?.Value, before[tag]?.Value, tag);
  }
});

test("person names, private elements and free text are removed inside kept sequences too; other UIDs are remapped", (t) => {
  const file = syntheticStudy({ ...jane, slices: 2 })[1]!;
  const { meta, dict } = read(file);
  const item = (dict["00081140"]!.Value![0] as data.DicomDataset);
  item["0040A123"] = { vr: "PN", Value: [{ Alphabetic: "NESTED^NAME" }] };
  item["00290010"] = { vr: "LO", Value: ["VENDOR X"] };
  item["00291010"] = { vr: "LO", Value: ["PID3001"] };
  item["00204000"] = { vr: "LT", Value: ["seen by DOE^JANE"] };
  dict["00089123"] = { vr: "UI", Value: ["1.2.3.4.5.6"] };
  const edited = writePart10(meta, dict);
  const out = deidentify(edited, ctx).bytes;
  t.deepEqual(profileViolations(out, edited), []);
  const kept = read(out).dict;
  const keptItem = value(kept, "00081140") as data.DicomDataset;
  t.deepEqual(Object.keys(keptItem).sort(), ["00081150", "00081155"]);
  t.is(value(kept, "00089123"), remapUid("1.2.3.4.5.6", ctx));
});

test("a file that is not DICOM is refused with an error that quotes none of it", (t) => {
  const junk = new TextEncoder().encode("PatientID=PID3001 name=DOE^JANE ".repeat(10));
  const error = t.throws(() => deidentify(junk, ctx), { instanceOf: DeidentificationError });
  t.is(error?.reason, "not-part10");
  t.notRegex(error?.message ?? "", /PID3001|DOE|JANE/);
});

test("a truncated file is refused, not stored as if whole", (t) => {
  const file = syntheticStudy({ ...jane, slices: 1 })[0]!;
  for (const cut of [300, 2000, file.byteLength - 1000]) {
    const error = t.throws(() => deidentify(file.subarray(0, cut), ctx), { instanceOf: DeidentificationError });
    t.notRegex(error?.message ?? "", /PID3001|DOE|JANE|ACC3001/);
  }
});

test("a file without a SOPInstanceUID is refused, naming the attribute", (t) => {
  const { meta, dict } = read(syntheticStudy({ ...jane, slices: 1 })[0]!);
  delete dict["00080018"];
  const error = t.throws(() => deidentify(writePart10(meta, dict), ctx), { instanceOf: DeidentificationError });
  t.is(error?.reason, "missing-attribute");
  t.regex(error?.message ?? "", /SOPInstanceUID \(0008,0018\)/);
});

test("a key shorter than 32 bytes is refused", (t) => {
  t.throws(() => deidentify(syntheticStudy({ ...jane, slices: 1 })[0]!, { projectId: "p", key: new Uint8Array(16) }), { instanceOf: RangeError, message: /at least 32/ });
});

tool("dcmconv")("an Implicit VR file is de-identified into Explicit VR Little Endian with the same pixels", async (t) => {
  const dir = await tempDir(t);
  const file = syntheticStudy({ ...jane, slices: 1 })[0]!;
  await writeFile(path.join(dir, "in.dcm"), file);
  await run("/usr/bin/dcmconv", ["+ti", path.join(dir, "in.dcm"), path.join(dir, "implicit.dcm")]);
  const implicit = new Uint8Array(await readFile(path.join(dir, "implicit.dcm")));
  t.is(value(read(implicit).meta, "00020010"), "1.2.840.10008.1.2");
  const out = deidentify(implicit, ctx).bytes;
  t.is(value(read(out).meta, "00020010"), "1.2.840.10008.1.2.1");
  t.deepEqual(pixelBytes(out), pixelBytes(file));
  t.deepEqual(profileViolations(out, implicit), []);
});

tool("dcmcjpeg")("a JPEG Lossless file keeps its transfer syntax, and decompresses to the original pixels", async (t) => {
  const dir = await tempDir(t);
  const file = syntheticStudy({ ...jane, slices: 1 })[0]!;
  await writeFile(path.join(dir, "in.dcm"), file);
  await run("/usr/bin/dcmcjpeg", [path.join(dir, "in.dcm"), path.join(dir, "jpeg.dcm")]);
  const jpeg = new Uint8Array(await readFile(path.join(dir, "jpeg.dcm")));
  const out = deidentify(jpeg, ctx).bytes;
  t.is(value(read(out).meta, "00020010"), value(read(jpeg).meta, "00020010"));
  t.deepEqual(profileViolations(out, jpeg), []);
  await writeFile(path.join(dir, "out.dcm"), out);
  await run("/usr/bin/dcmdjpeg", [path.join(dir, "out.dcm"), path.join(dir, "plain.dcm")]);
  t.deepEqual(pixelBytes(new Uint8Array(await readFile(path.join(dir, "plain.dcm")))), pixelBytes(file));
});

tool("dcm2niix")("dcm2niix stacks a de-identified series into one volume whose sidecar identifies no one", async (t) => {
  const dir = await tempDir(t);
  const files = syntheticStudy({ ...jane, slices: 8 });
  const sidecarOf = async (name: string, series: Uint8Array[]) => {
    const input = path.join(dir, name);
    const output = path.join(dir, `${name}-nifti`);
    await mkdir(input);
    await mkdir(output);
    await Promise.all(series.map((f, i) => writeFile(path.join(input, `${i}.dcm`), f)));
    await run("/usr/bin/dcm2niix", ["-z", "y", "-b", "y", "-f", "%j", "-o", output, input]);
    const written = await readdir(output);
    t.is(written.filter((f) => f.endsWith(".nii.gz")).length, 1, written.join(", "));
    return JSON.parse(await readFile(path.join(output, written.find((f) => f.endsWith(".json"))!), "utf8")) as Record<string, unknown>;
  };
  const deidentified = await sidecarOf("deidentified", files.map((f) => deidentify(f, ctx).bytes));
  t.deepEqual(IDENTIFYING_SIDECAR_FIELDS.filter((field) => field in deidentified), []);
  t.is(deidentified["SliceThickness"], 5);
  // The check can fail: from the originals, dcm2niix copies the institution into the sidecar.
  const original = await sidecarOf("original", files);
  t.true(IDENTIFYING_SIDECAR_FIELDS.some((field) => field in original));
});

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import test from "ava";
import dcmjs from "dcmjs";
import { syntheticStudy, SYNTHETIC_UID_ROOT } from "../testing/synthetic-study.js";

const DCMFTEST = "/usr/bin/dcmftest";
const patient = { accessionNumber: "ACC2001", patientId: "PID2001", patientName: "DOE^JANE" };

function read(bytes: Uint8Array) {
  return dcmjs.data.DicomMessage.readFile(new Uint8Array(bytes).buffer);
}

function value(ds: Record<string, { Value?: unknown[] }>, tag: string): unknown {
  return ds[tag]?.Value?.[0];
}

test("a study has one Part-10 file per slice per series, each a CT image dcmjs reads back", (t) => {
  const files = syntheticStudy({ ...patient, slices: 8, series: 2, rows: 64, columns: 48 });
  t.is(files.length, 16);
  for (const [i, file] of files.entries()) {
    const { meta, dict } = read(file);
    t.is(value(meta, "00020010"), "1.2.840.10008.1.2.1");
    t.is(value(dict, "00080016"), "1.2.840.10008.5.1.4.1.1.2");
    t.is(value(meta, "00020003"), value(dict, "00080018"));
    t.is(value(dict, "00280010"), 64);
    t.is(value(dict, "00280011"), 48);
    t.is(value(dict, "00200013"), (i % 8) + 1);
    t.is(value(dict, "00200011"), Math.floor(i / 8) + 1);
    t.is((dict["7FE00010"]!.Value![0] as ArrayBuffer).byteLength, 64 * 48 * 2);
  }
});

test("the files carry the identifying attributes a scanner writes, nested and private ones included", (t) => {
  const { dict } = read(syntheticStudy({ ...patient, slices: 2 })[1]!);
  t.deepEqual(value(dict, "00100010"), { Alphabetic: "DOE^JANE" });
  t.is(value(dict, "00100020"), "PID2001");
  t.is(value(dict, "00080050"), "ACC2001");
  t.is(value(dict, "00080080"), "North General Hospital");
  t.is(value(dict, "00091001"), "PID2001");
  t.regex(String(value(dict, "00204000")), /DOE\^JANE/);
  const request = value(dict, "00400275") as Record<string, { Value?: unknown[] }>;
  t.deepEqual(value(request, "00400006"), { Alphabetic: "CUDDY^LISA" });
});

test("slices are placed one slice thickness apart along z, so converters stack them", (t) => {
  const files = syntheticStudy({ ...patient, slices: 4 });
  const z = files.map((f) => (read(f).dict["00200032"]!.Value as number[])[2]);
  t.deepEqual(z, [-7.5, -2.5, 2.5, 7.5]);
});

test("the same options give the same bytes; another seed gives other pixels and UIDs", (t) => {
  const a = syntheticStudy({ ...patient, slices: 3, seed: 5 });
  const b = syntheticStudy({ ...patient, slices: 3, seed: 5 });
  const c = syntheticStudy({ ...patient, slices: 3, seed: 6 });
  t.deepEqual(a, b);
  t.notDeepEqual(read(a[1]!).dict["7FE00010"]!.Value, read(c[1]!).dict["7FE00010"]!.Value);
  t.not(value(read(a[0]!).dict, "0020000D"), value(read(c[0]!).dict, "0020000D"));
});

test("UIDs sit under the synthetic root, fit in 64 characters, and a given study UID is used", (t) => {
  const derived = read(syntheticStudy({ ...patient, slices: 1 })[0]!).dict;
  for (const tag of ["0020000D", "0020000E", "00080018", "00200052"]) {
    const uid = String(value(derived, tag));
    t.true(uid.startsWith(`${SYNTHETIC_UID_ROOT}.`), tag);
    t.true(uid.length <= 64, tag);
  }
  const given = read(syntheticStudy({ ...patient, slices: 1, studyInstanceUid: "1.2.3.4" })[0]!).dict;
  t.is(value(given, "0020000D"), "1.2.3.4");
});

test("an MR study is written with the MR Image Storage class and unsigned pixels", (t) => {
  const { dict } = read(syntheticStudy({ ...patient, slices: 1, modality: "MR" })[0]!);
  t.is(value(dict, "00080016"), "1.2.840.10008.5.1.4.1.1.4");
  t.is(value(dict, "00080060"), "MR");
  t.is(value(dict, "00280103"), 0);
});

(existsSync(DCMFTEST) ? test : test.skip)("dcmtk's dcmftest accepts every file as DICOM Part-10", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "flip-synthetic-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const files = syntheticStudy({ ...patient, slices: 4, series: 2, modality: "MR" });
  const paths = await Promise.all(files.map(async (f, i) => {
    const p = path.join(dir, `${i}.dcm`);
    await writeFile(p, f);
    return p;
  }));
  const { stdout } = await promisify(execFile)(DCMFTEST, paths);
  t.is(stdout.trim().split("\n").filter((line) => line.startsWith("yes:")).length, files.length, stdout);
});

import test from "ava";
import dcmjs from "dcmjs";
import type { data } from "dcmjs";
import { syntheticStudy } from "../testing/synthetic-study.js";
import { deidentify, type DeidentifyContext } from "./deidentify.js";
import { writePart10 } from "./part10-writer.js";
import { profileViolations } from "./profile-check.js";

const ctx: DeidentifyContext = { projectId: "project-a", key: new Uint8Array(32).fill(3) };
const original = syntheticStudy({ accessionNumber: "ACC4001", patientId: "PID4001", patientName: "ROE^RICHARD", slices: 2 })[1]!;
const clean = deidentify(original, ctx).bytes;

/** The de-identified file with one edit made to its dataset. */
function edited(edit: (ds: data.DicomDataset) => void): Uint8Array {
  const { meta, dict } = dcmjs.data.DicomMessage.readFile(new Uint8Array(clean).buffer);
  edit(dict);
  return writePart10(meta, dict);
}

test("an identifiable original breaks the profile in many ways, the private block and the nested name among them", (t) => {
  const violations = profileViolations(original);
  t.true(violations.length > 30, violations.join("\n"));
  t.true(violations.includes("(0009,1001) private element present"));
  t.true(violations.includes("(0010,0030) PatientBirthDate present with a value (the profile empties it)"));
  t.true(violations.includes("(0008,0080) InstitutionName present (the profile removes it)"));
  t.true(violations.includes("(0040,0275) RequestAttributesSequence[0] > (0040,0006) ScheduledPerformingPhysicianName person name present"));
  t.true(violations.includes("(0020,4000) ImageComments present (the profile removes it)"));
  t.true(violations.includes("(0002,0016) SourceApplicationEntityTitle present (the profile removes it)"), "the file meta is checked too");
});

test("a de-identified file complies", (t) => {
  t.deepEqual(profileViolations(clean, original), []);
});

test("messages name attributes, never their values", (t) => {
  for (const line of profileViolations(original)) t.notRegex(line, /ROE|RICHARD|PID4001|ACC4001|North General/);
});

test("an original UID left in place is reported", (t) => {
  const uid = String(dcmjs.data.DicomMessage.readFile(new Uint8Array(original).buffer).dict["0020000D"]!.Value![0]);
  const file = edited((ds) => (ds["0020000D"] = { vr: "UI", Value: [uid] }));
  t.deepEqual(profileViolations(file, original), ["(0020,000D) StudyInstanceUID holds the original's (0020,000D) StudyInstanceUID value"]);
  t.deepEqual(profileViolations(file), [], "without the original a remapped UID cannot be told from the original one");
});

test("an identifying value copied into a kept attribute is found", (t) => {
  const file = edited((ds) => (ds["00180015"] = { vr: "CS", Value: ["PID4001"] }));
  t.deepEqual(profileViolations(file, original).sort(), [
    "(0018,0015) BodyPartExamined holds the original's (0009,1001) value",
    "(0018,0015) BodyPartExamined holds the original's (0010,0020) PatientID value",
  ]);
});

test("a name part in a kept attribute is found, but not inside a longer word", (t) => {
  t.deepEqual(profileViolations(edited((ds) => (ds["00081090"] = { vr: "LO", Value: ["Richard scanner"] })), original), []);
  t.deepEqual(profileViolations(edited((ds) => (ds["00081090"] = { vr: "LO", Value: ["RICHARD scanner"] })), original), [
    "(0008,1090) ManufacturerModelName holds the original's (0010,0010) PatientName value",
  ]);
  t.deepEqual(profileViolations(edited((ds) => (ds["00081090"] = { vr: "LO", Value: ["RICHARDSON"] })), original), []);
});

test("free text, a nested person name and an emptied attribute with a value are each reported", (t) => {
  const file = edited((ds) => {
    ds["00204000"] = { vr: "LT", Value: ["nothing here"] };
    ds["00080050"] = { vr: "SH", Value: ["X1"] };
    (ds["00081140"]!.Value![0] as data.DicomDataset)["0040A123"] = { vr: "PN", Value: [{ Alphabetic: "SOMEONE" }] };
  });
  t.deepEqual(profileViolations(file).sort(), [
    "(0008,0050) AccessionNumber present with a value (the profile empties it)",
    "(0008,1140) ReferencedImageSequence[0] > (0040,A123) PersonName person name present",
    "(0020,4000) ImageComments present (the profile removes it)",
  ]);
});

test("a file without the de-identification markers or pseudonym is reported", (t) => {
  const file = edited((ds) => {
    delete ds["00120062"];
    ds["00100020"] = { vr: "LO", Value: [""] };
  });
  const violations = profileViolations(file);
  t.true(violations.includes("(0012,0062) PatientIdentityRemoved is not YES"));
  t.true(violations.includes("(0010,0020) PatientID is not a FLIP pseudonym"));
});

test("a file that is not DICOM is one violation", (t) => {
  t.deepEqual(profileViolations(new Uint8Array(10)), ["the file is not a readable DICOM Part-10 file"]);
});

import test from "ava";
import dcmjs from "dcmjs";
import { BASIC_PROFILE, IDENTIFYING_SIDECAR_FIELDS, profileMarkdownTable, ruleFor } from "./profile.js";

test("each tag has one rule, written as eight upper-case hex digits or a repeating group", (t) => {
  const tags = BASIC_PROFILE.map((rule) => rule.tag);
  t.is(new Set(tags).size, tags.length);
  for (const tag of tags) t.regex(tag, /^([0-9A-F]{8}|60xx[0-9A-F]{4}|50xxxxxx)$/);
});

test("each keyword is the DICOM dictionary's name for its tag", (t) => {
  for (const rule of BASIC_PROFILE.filter((r) => !r.tag.includes("x"))) {
    const entry = dcmjs.data.DicomMetaDictionary.dictionary[`(${rule.tag.slice(0, 4)},${rule.tag.slice(4)})`];
    t.is(entry?.name.replace(/^RETIRED_/, ""), rule.keyword, rule.tag);
  }
});

test("the profile covers patient identity, the visit, and instance UIDs", (t) => {
  const action = (keyword: string) => BASIC_PROFILE.find((r) => r.keyword === keyword)?.action;
  for (const keyword of ["PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate", "ContentDate"]) t.is(action(keyword), "Z", keyword);
  for (const keyword of ["OtherPatientIDs", "PatientAddress", "InstitutionName", "StationName", "OperatorsName", "ImageComments", "RequestAttributesSequence", "StudyDescription", "ProtocolName"]) {
    t.is(action(keyword), "X", keyword);
  }
  for (const keyword of ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID", "MediaStorageSOPInstanceUID", "ReferencedSOPInstanceUID", "IrradiationEventUID"]) {
    t.is(action(keyword), "U", keyword);
  }
  t.is(action("SOPClassUID"), "K");
});

test("overlays and curves in any repeating group find their rule", (t) => {
  t.is(ruleFor("60024000")?.keyword, "OverlayComments");
  t.is(ruleFor("601E3000")?.action, "X");
  t.is(ruleFor("50020010")?.keyword, "CurveData");
  t.is(ruleFor("00280010"), undefined);
});

test("the Markdown table lists the general rules and a row per attribute", (t) => {
  const markdown = profileMarkdownTable();
  t.regex(markdown, /^- Every private element/m);
  t.regex(markdown, /^\| \(0010,0010\) \| PatientName \| Z \| Z \| kept with an empty value \(FLIP writes the keyed patient pseudonym here\) \|$/m);
  t.is(markdown.split("\n").filter((line) => line.startsWith("| (")).length, BASIC_PROFILE.length);
});

test("the identifying sidecar fields include what dcm2niix copies from an identifiable series", (t) => {
  for (const field of ["PatientName", "PatientID", "InstitutionName", "InstitutionAddress", "StationName", "AccessionNumber", "DeviceSerialNumber"]) {
    t.true(IDENTIFYING_SIDECAR_FIELDS.includes(field), field);
  }
});

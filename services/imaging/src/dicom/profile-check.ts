/**
 * An independent check that a stored file complies with FLIP's de-identification profile: it reads
 * the file back and walks every element (file meta and nested sequence items included). Tests across
 * the repository use it; its messages name attributes, never their values.
 */
import dcmjs from "dcmjs";
import type { data } from "dcmjs";
import { PSEUDONYM_PATTERN } from "./deidentify.js";
import { DICOM_REGISTERED_UID_PREFIX, FREE_TEXT_VRS, punctuateTag, ruleFor } from "./profile.js";

/**
 * Every way a stored file breaks the profile, as person-readable lines ("(0010,0030) PatientBirthDate
 * present with a value"); empty when it complies. When `original` (the identifiable input file) is
 * given, also reports any identifying value of the original (patient name parts, id, birth date,
 * accession, institution, UIDs, physician/operator names...) found anywhere in the output's elements
 * or raw bytes (pixel data aside).
 */
export function profileViolations(deidentified: Uint8Array, original?: Uint8Array): string[] {
  const out = tryRead(deidentified);
  if (!out) return ["the file is not a readable DICOM Part-10 file"];
  const found = new Set<string>();
  walk(out.meta, "", false, (v) => found.add(v));
  walk(out.dict, "", true, (v) => found.add(v));
  checkMarkers(out.dict, (v) => found.add(v));
  if (original) {
    const source = tryRead(original);
    if (!source) found.add("the original is not a readable DICOM Part-10 file, so it was not compared");
    else for (const leak of leaks(source, out, deidentified)) found.add(leak);
  }
  return [...found];
}

function tryRead(bytes: Uint8Array): data.DicomDict | undefined {
  try {
    const whole = bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    return dcmjs.data.DicomMessage.readFile(whole ? (bytes.buffer as ArrayBuffer) : new Uint8Array(bytes).buffer, { noCopy: true });
  } catch {
    return undefined;
  }
}

/** "(0010,0010) PatientName", with the path of enclosing sequence items first. */
function label(path: string, tag: string): string {
  if (isPrivate(tag)) return `${path}${punctuateTag(tag)}`;
  const keyword = ruleFor(tag)?.keyword ?? dcmjs.data.DicomMetaDictionary.dictionary[punctuateTag(tag)]?.name ?? "unknown";
  return `${path}${punctuateTag(tag)} ${keyword}`;
}

function isPrivate(tag: string): boolean {
  return Number.parseInt(tag.slice(0, 4), 16) % 2 === 1;
}

function hasValue(element: data.DicomElement): boolean {
  return (element.Value ?? []).some((v) => {
    if (v === null || v === undefined) return false;
    if (typeof v === "string") return v.replace(/[ \0]/g, "") !== "";
    if (typeof v === "object" && !(v instanceof ArrayBuffer) && !ArrayBuffer.isView(v) && element.vr === "PN") {
      return Object.values(v as data.PersonNameValue).some((part) => typeof part === "string" && part !== "");
    }
    return true;
  });
}

function firstString(element: data.DicomElement | undefined): string {
  const v = element?.Value?.[0];
  if (typeof v === "string") return v.trim();
  if (v && typeof v === "object" && "Alphabetic" in v) return String((v as data.PersonNameValue).Alphabetic ?? "").trim();
  return "";
}

function isPseudonymHolder(tag: string, element: data.DicomElement, topLevel: boolean): boolean {
  return topLevel && (tag === "00100010" || tag === "00100020") && PSEUDONYM_PATTERN.test(firstString(element));
}

function walk(ds: data.DicomDataset, path: string, topLevel: boolean, report: (violation: string) => void): void {
  for (const [tag, element] of Object.entries(ds)) {
    const where = label(path, tag);
    const action = ruleFor(tag)?.action;
    if (isPrivate(tag)) report(`${where} private element present`);
    else if (element.vr === "PN" && !isPseudonymHolder(tag, element, topLevel)) report(`${where} person name present`);
    else if (action === "X") report(`${where} present (the profile removes it)`);
    else if (action === "Z" && hasValue(element) && !isPseudonymHolder(tag, element, topLevel)) report(`${where} present with a value (the profile empties it)`);
    else if (FREE_TEXT_VRS.has(element.vr) && action !== "K" && hasValue(element)) report(`${where} free text present`);
    if (element.vr === "SQ") {
      (element.Value ?? []).forEach((item, i) => walk(item as data.DicomDataset, `${where}[${i}] > `, false, report));
    }
  }
}

/** PS3.15 E.1.1: a de-identified instance says so, and says how. */
function checkMarkers(ds: data.DicomDataset, report: (violation: string) => void): void {
  if (firstString(ds["00120062"]) !== "YES") report("(0012,0062) PatientIdentityRemoved is not YES");
  if (!firstString(ds["00120063"]) && !(ds["00120064"]?.Value ?? []).length) report("(0012,0063) DeidentificationMethod and (0012,0064) DeidentificationMethodCodeSequence are both missing");
  const id = firstString(ds["00100020"]);
  if (!PSEUDONYM_PATTERN.test(id)) report("(0010,0020) PatientID is not a FLIP pseudonym");
  else if (firstString(ds["00100010"]) !== id) report("(0010,0010) PatientName is not the pseudonym in PatientID");
}

/** An identifying value of the original: where it was, and the text to look for. */
interface Identifier {
  where: string;
  text: string;
  uid: boolean;
}

const MIN_SEARCH_LENGTH = 3;

/**
 * The original's identifying values (person names and their parts, values the profile changes,
 * free text, instance UIDs), and the values of elements the profile keeps: a text found among
 * those (a body part that is also a series description) identifies no one.
 */
function identifiersOf(ds: data.DicomDataset, path: string, ids: Identifier[], kept: Set<string>): void {
  for (const [tag, element] of Object.entries(ds)) {
    const where = label(path, tag);
    if (element.vr === "SQ") {
      (element.Value ?? []).forEach((item, i) => identifiersOf(item as data.DicomDataset, `${where}[${i}] > `, ids, kept));
      continue;
    }
    const action = ruleFor(tag)?.action;
    for (const v of element.Value ?? []) {
      if (element.vr === "UI") {
        const uid = String(v).trim();
        if (uid && !uid.startsWith(DICOM_REGISTERED_UID_PREFIX) && action !== "K") ids.push({ where, text: uid, uid: true });
      } else if (element.vr === "PN") {
        const name = firstString({ vr: "PN", Value: [v] });
        for (const part of [name, ...name.split(/[\^= ]+/)]) ids.push({ where, text: part, uid: false });
      } else if (typeof v === "string") {
        if ((action && action !== "K") || FREE_TEXT_VRS.has(element.vr) || isPrivate(tag)) ids.push({ where, text: v.trim(), uid: false });
        else kept.add(v.trim());
      }
    }
  }
}

/** Every string and UID value of a dataset, with where it sits. */
function valuesOf(ds: data.DicomDataset, path: string, into: { where: string; text: string }[]): { where: string; text: string }[] {
  for (const [tag, element] of Object.entries(ds)) {
    const where = label(path, tag);
    if (element.vr === "SQ") (element.Value ?? []).forEach((item, i) => valuesOf(item as data.DicomDataset, `${where}[${i}] > `, into));
    else for (const v of element.Value ?? []) {
      const text = typeof v === "string" ? v : element.vr === "PN" ? firstString({ vr: "PN", Value: [v] }) : "";
      if (text) into.push({ where, text: text.trim() });
    }
  }
  return into;
}

function leaks(source: data.DicomDict, out: data.DicomDict, outBytes: Uint8Array): string[] {
  const all: Identifier[] = [];
  const kept = new Set<string>();
  identifiersOf(source.meta, "", all, kept);
  identifiersOf(source.dict, "", all, kept);
  const ids = all.filter((id) => id.text.length >= MIN_SEARCH_LENGTH && !kept.has(id.text));
  const outValues = valuesOf(out.meta, "", []);
  valuesOf(out.dict, "", outValues);
  const haystack = bytesOutsidePixelData(outBytes);
  const found: string[] = [];
  for (const id of ids) {
    const inElements = outValues.filter((v) => (id.uid ? v.text === id.text : containsWord(v.text, id.text, false)));
    for (const hit of inElements) found.push(`${hit.where} holds the original's ${id.where} value`);
    if (inElements.length === 0 && containsWord(haystack, Buffer.from(id.text, "utf8").toString("latin1"), id.uid)) {
      found.push(`the original's ${id.where} value appears in the file's bytes`);
    }
  }
  return found;
}

/**
 * Whether `needle` occurs in `hay` as a whole word: not inside a longer run of letters and digits
 * (nor, for UIDs, dots), so a short id does not match the digits of an unrelated UID.
 */
function containsWord(hay: string, needle: string, uid: boolean): boolean {
  const inWord = uid ? /[0-9A-Za-z.]/ : /[0-9A-Za-z]/;
  for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + 1)) {
    const before = hay[at - 1] ?? "";
    const after = hay[at + needle.length] ?? "";
    const startsInWord = inWord.test(needle[0]!) && inWord.test(before);
    const endsInWord = inWord.test(needle[needle.length - 1]!) && inWord.test(after);
    if (!startsInWord && !endsInWord) return true;
  }
  return false;
}

/** The file as latin-1 text, with the value of top-level PixelData blanked: noise there is not a leak. */
function bytesOutsidePixelData(bytes: Uint8Array): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
  for (const vr of ["OW", "OB"]) {
    const at = text.lastIndexOf(`\xE0\x7F\x10\x00${vr}\0\0`);
    if (at < 0) continue;
    const length = Buffer.from(bytes.buffer, bytes.byteOffset + at + 8, 4).readUInt32LE(0);
    const end = length === 0xffffffff ? text.length : Math.min(text.length, at + 12 + length);
    return text.slice(0, at + 12) + text.slice(end);
  }
  return text;
}

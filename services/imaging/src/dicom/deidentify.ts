/**
 * De-identifies one DICOM Part-10 instance in memory by the profile in `profile.ts`: attributes
 * removed, emptied, replaced or remapped, private and person-name and free-text elements removed at
 * any depth, the patient replaced by a keyed pseudonym. The result depends only on the input, the
 * project and the trust's key, so the same image imported twice gives the same bytes.
 */
import { createHmac, createSecretKey, type KeyObject } from "node:crypto";
import dcmjs from "dcmjs";
import type { data } from "dcmjs";
import { EXPLICIT_VR_LITTLE_ENDIAN, writePart10 } from "./part10-writer.js";
import { DICOM_REGISTERED_UID_PREFIX, FREE_TEXT_VRS, ruleFor } from "./profile.js";

// dcmjs writes its parser's complaints to the console, bypassing the service's logs (and could quote a
// value from a file): silence it; a file it cannot read is reported through DeidentificationError.
dcmjs.log.setLevel("silent");
for (const name of ["validation.dcmjs", "AsyncDicomReader"]) dcmjs.log.getLogger(name).setLevel("silent");

export interface DeidentifyContext {
  projectId: string;
  /** The trust's secret key (≥ 32 bytes). Pseudonyms are HMAC-SHA256(key, projectId + "\0" + kind + "\0" + original). */
  key: Uint8Array;
}

export interface DeidentifiedInstance {
  /** The de-identified Part-10 file. */
  bytes: Uint8Array;
  /** What PatientID and PatientName become: "P-" and 16 hex digits. */
  patientPseudonym: string;
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  modality: string;
  /** InstanceNumber (0020,0013), when the file has one: the order of the instances in their series. */
  instanceNumber: number | undefined;
  /** What it came from (stays inside the imaging service; never stored in the research store). */
  original: { studyUid: string; seriesUid: string; sopInstanceUid: string; accessionNumber: string; patientId: string };
}

/** Why a file could not be de-identified; never carries a value from the file. */
export type DeidentificationFailure = "not-part10" | "malformed" | "missing-attribute" | "unsupported-transfer-syntax";

/** A file that cannot be de-identified. The message says what is wrong and holds no value from the file. */
export class DeidentificationError extends Error {
  override readonly name = "DeidentificationError";
  constructor(
    readonly reason: DeidentificationFailure,
    message: string,
  ) {
    super(message);
  }
}

export const DEIDENTIFICATION_METHOD = "FLIP PS3.15 Basic Profile; keyed pseudonyms; UIDs remapped";
/** The shape of every patient pseudonym. */
export const PSEUDONYM_PATTERN = /^P-[0-9a-f]{16}$/;
/** FLIP's implementation class UID (2.25 form of a hash of "FLIP imaging de-identification"). */
export const FLIP_IMPLEMENTATION_CLASS_UID = "2.25.54579491013441184255580502798945713427";
export const FLIP_IMPLEMENTATION_VERSION = "FLIP_DEID_1";

const MIN_KEY_BYTES = 32;
const BIG_ENDIAN_SYNTAX = "1.2.840.10008.1.2.2";
const NATIVE_SYNTAXES = new Set(["1.2.840.10008.1.2", EXPLICIT_VR_LITTLE_ENDIAN, "1.2.840.10008.1.2.1.99"]);
const PATIENT_NAME = "00100010";
const PATIENT_ID = "00100020";

/** The keyed pseudonymous UID for `uid` in this project: "2.25." and the first 128 bits of the HMAC as a decimal. */
export function remapUid(uid: string, ctx: DeidentifyContext): string {
  const digest = hmac(ctx, "uid", trimValue(uid));
  return `2.25.${BigInt(`0x${digest.toString("hex", 0, 16)}`)}`;
}

/** The keyed patient pseudonym in this project: "P-" and 16 hex digits. */
export function patientPseudonym(patientId: string, ctx: DeidentifyContext): string {
  return `P-${hmac(ctx, "patient", trimValue(patientId)).toString("hex", 0, 8)}`;
}

/** Importing the raw key for every HMAC took a third of the de-identification time; keys are imported once. */
const keyObjects = new WeakMap<Uint8Array, KeyObject>();

function hmac(ctx: DeidentifyContext, kind: string, original: string): Buffer {
  let key = keyObjects.get(ctx.key);
  if (!key) {
    if (ctx.key.byteLength < MIN_KEY_BYTES) {
      throw new RangeError(`the pseudonym key has ${ctx.key.byteLength} bytes; it needs at least ${MIN_KEY_BYTES} (generate one with: openssl rand -base64 32)`);
    }
    key = createSecretKey(ctx.key);
    keyObjects.set(ctx.key, key);
  }
  return createHmac("sha256", key).update(`${ctx.projectId}\0${kind}\0${original}`).digest();
}

function trimValue(s: string): string {
  return s.replace(/^[ \0]+|[ \0]+$/g, "");
}

/** De-identifies one Part-10 file; throws {@link DeidentificationError} for a file it cannot handle. */
export function deidentify(part10: Uint8Array, ctx: DeidentifyContext): DeidentifiedInstance {
  const { meta, dict } = readPart10(part10);
  const syntax = stringOf(meta["00020010"]);
  if (syntax === BIG_ENDIAN_SYNTAX) {
    throw new DeidentificationError("unsupported-transfer-syntax", "Explicit VR Big Endian (retired) is not supported; convert the file first (dcmconv +te)");
  }
  const original = {
    studyUid: required(dict, "0020000D", "StudyInstanceUID"),
    seriesUid: required(dict, "0020000E", "SeriesInstanceUID"),
    sopInstanceUid: required(dict, "00080018", "SOPInstanceUID"),
    accessionNumber: stringOf(dict["00080050"]),
    patientId: required(dict, PATIENT_ID, "PatientID"),
  };
  checkPixelDataComplete(dict, NATIVE_SYNTAXES.has(syntax) || !syntax);
  const sopClassUid = stringOf(dict["00080016"]) || required(meta, "00020002", "SOPClassUID (or MediaStorageSOPClassUID)");
  const pseudonym = patientPseudonym(original.patientId, ctx);

  const cleaned = cleanDataset(dict, ctx, true);
  Object.assign(cleaned, {
    "00080005": el("CS", "ISO_IR 192"),
    [PATIENT_NAME]: { vr: "PN", Value: [{ Alphabetic: pseudonym }] },
    [PATIENT_ID]: el("LO", pseudonym),
    "00120062": el("CS", "YES"),
    "00120063": el("LO", DEIDENTIFICATION_METHOD),
    "00120064": el("SQ", { "00080100": el("SH", "113100"), "00080102": el("SH", "DCM"), "00080104": el("LO", "Basic Application Confidentiality Profile") }),
  } satisfies data.DicomDataset);

  const sopInstanceUid = remapUid(original.sopInstanceUid, ctx);
  const newMeta: data.DicomDataset = {
    "00020001": el("OB", new Uint8Array([0, 1])),
    "00020002": el("UI", sopClassUid),
    "00020003": el("UI", sopInstanceUid),
    // Written Explicit VR Little Endian unless the pixel data is encapsulated, which is kept as is.
    "00020010": el("UI", NATIVE_SYNTAXES.has(syntax) || !syntax ? EXPLICIT_VR_LITTLE_ENDIAN : syntax),
    "00020012": el("UI", FLIP_IMPLEMENTATION_CLASS_UID),
    "00020013": el("SH", FLIP_IMPLEMENTATION_VERSION),
  };
  return {
    bytes: writePart10(newMeta, cleaned, part10.byteLength),
    patientPseudonym: pseudonym,
    studyUid: remapUid(original.studyUid, ctx),
    seriesUid: remapUid(original.seriesUid, ctx),
    sopInstanceUid,
    modality: stringOf(dict["00080060"]),
    instanceNumber: instanceNumberOf(dict["00200013"]),
    original,
  };
}

function instanceNumberOf(element: data.DicomElement | undefined): number | undefined {
  const n = Number(element?.Value?.[0]);
  return Number.isInteger(n) ? n : undefined;
}

function readPart10(part10: Uint8Array): data.DicomDict {
  if (part10.byteLength < 132 || String.fromCharCode(...part10.subarray(128, 132)) !== "DICM") {
    throw new DeidentificationError("not-part10", "not a DICOM Part-10 file: no 'DICM' marker after the 128-byte preamble");
  }
  const whole = part10.buffer instanceof ArrayBuffer && part10.byteOffset === 0 && part10.byteLength === part10.buffer.byteLength;
  // A copy of just these bytes (Buffer#slice would be a view of a shared pool, and dcmjs reads the whole ArrayBuffer).
  const buffer = whole ? (part10.buffer as ArrayBuffer) : new Uint8Array(part10).buffer;
  try {
    return dcmjs.data.DicomMessage.readFile(buffer, { noCopy: true });
  } catch {
    // The parser's message can quote values from the file, so it is not passed on.
    throw new DeidentificationError("malformed", "the DICOM file could not be parsed: it is truncated or malformed");
  }
}

/**
 * dcmjs reads a truncated file without complaint; an image whose pixel data is missing or shorter
 * than its size attributes say was cut off in transfer and must not be stored as if whole.
 */
function checkPixelDataComplete(dict: data.DicomDataset, native: boolean): void {
  const rows = numberOf(dict["00280010"]);
  const columns = numberOf(dict["00280011"]);
  if (!rows || !columns) return;
  const pixels = dict["7FE00010"] ?? dict["7FE00008"] ?? dict["7FE00009"];
  if (!pixels) throw new DeidentificationError("malformed", "the image has Rows and Columns but no pixel data: the file is truncated");
  if (!native || !dict["7FE00010"]) return;
  const bitsAllocated = numberOf(dict["00280100"]) || 16;
  const samples = numberOf(dict["00280002"]) || 1;
  const frames = numberOf(dict["00280008"]) || 1;
  const expected = Math.ceil((rows * columns * samples * frames * bitsAllocated) / 8);
  const actual = (pixels.Value ?? []).reduce<number>((sum, v) => sum + ((v as { byteLength?: number }).byteLength ?? 0), 0);
  if (actual < expected) {
    throw new DeidentificationError("malformed", `the pixel data has ${actual} bytes where Rows × Columns × frames need ${expected}: the file is truncated`);
  }
}

function numberOf(element: data.DicomElement | undefined): number {
  const v = element?.Value?.[0];
  return typeof v === "number" ? v : Number(v ?? 0) || 0;
}

function required(ds: data.DicomDataset, tag: string, keyword: string): string {
  const value = stringOf(ds[tag]);
  if (!value) {
    throw new DeidentificationError("missing-attribute", `the file has no ${keyword} (${tag.slice(0, 4)},${tag.slice(4)}); the PACS must supply it`);
  }
  return value;
}

function stringOf(element: data.DicomElement | undefined): string {
  const v = element?.Value?.[0];
  return typeof v === "string" ? trimValue(v) : "";
}

function el(vr: string, ...values: unknown[]): data.DicomElement {
  return { vr, Value: values };
}

/** A copy of `ds` with the profile applied, recursively; elements kept are shared, not copied. */
function cleanDataset(ds: data.DicomDataset, ctx: DeidentifyContext, topLevel: boolean): data.DicomDataset {
  const out: data.DicomDataset = {};
  for (const [tag, element] of Object.entries(ds)) {
    const group = Number.parseInt(tag.slice(0, 4), 16);
    if (group % 2 === 1 || group === 0x0002 || tag.endsWith("0000")) continue;
    const action = ruleFor(tag)?.action;
    if (element.vr === "PN" && !(topLevel && tag === PATIENT_NAME)) continue;
    if (FREE_TEXT_VRS.has(element.vr) && action !== "K") continue;
    const cleaned = applyAction(action, element, ctx);
    if (cleaned) out[tag] = cleaned;
  }
  return out;
}

function applyAction(action: string | undefined, element: data.DicomElement, ctx: DeidentifyContext): data.DicomElement | undefined {
  const { vr } = element;
  switch (action) {
    case "X":
      return undefined;
    case "Z":
      return { vr, Value: [] };
    case "D":
      return dummy(element, ctx);
    case "U":
    case "K":
    case undefined:
      if (vr === "SQ") return cleanSequence(element, ctx);
      if (vr === "UI" && action !== "K") return remapUids(element, ctx, action === "U");
      return element;
    default:
      throw new Error(`unknown profile action ${action}`);
  }
}

function cleanSequence(element: data.DicomElement, ctx: DeidentifyContext): data.DicomElement {
  return { vr: "SQ", Value: (element.Value ?? []).map((item) => cleanDataset(item as data.DicomDataset, ctx, false)) };
}

/** Remaps the UIDs of a UI element: all of them for a U rule, else those not registered by DICOM. */
function remapUids(element: data.DicomElement, ctx: DeidentifyContext, all: boolean): data.DicomElement {
  const values = (element.Value ?? []).map((v) => String(v));
  if (!all && values.every((uid) => uid === "" || uid.startsWith(DICOM_REGISTERED_UID_PREFIX))) return element;
  return { vr: "UI", Value: values.map((uid) => (uid === "" || (!all && uid.startsWith(DICOM_REGISTERED_UID_PREFIX)) ? uid : remapUid(uid, ctx))) };
}

const DUMMY_TEXT: Readonly<Record<string, string>> = { DA: "19000101", TM: "000000", DT: "19000101000000", AS: "000D", DS: "0", IS: "0" };
const BINARY_NUMBER_VRS = new Set(["US", "SS", "UL", "SL", "FL", "FD"]);

/** A value of the same VR that says nothing (D). */
function dummy(element: data.DicomElement, ctx: DeidentifyContext): data.DicomElement {
  const { vr } = element;
  if (vr === "SQ") return cleanSequence(element, ctx);
  if (vr === "UI") return remapUids(element, ctx, true);
  if (BINARY_NUMBER_VRS.has(vr)) return el(vr, 0);
  if (vr === "SV" || vr === "UV") return el(vr, 0n);
  if (vr === "AT") return el(vr, 0);
  if (vr.startsWith("O") || vr === "UN") return el(vr, new Uint8Array(2));
  return el(vr, DUMMY_TEXT[vr] ?? "ANONYMIZED");
}

/**
 * Synthetic CT/MR studies as real DICOM Part-10 files, for tests, demos and benchmarks. Each file
 * carries the identifying attributes a scanner writes (names, ids, dates, institution, free text,
 * a private block, a person name inside a sequence), so de-identification has something to remove,
 * and the geometry dcm2niix needs to stack the slices into a volume. Datasets are built in dcmjs's
 * dict form and written by {@link writePart10} (about five times faster than dcmjs's own writer).
 */
import { createHash } from "node:crypto";
import type { data } from "dcmjs";
import { EXPLICIT_VR_LITTLE_ENDIAN, writePart10 } from "../dicom/part10-writer.js";

export interface SyntheticStudyOptions {
  accessionNumber: string;
  patientId: string;
  /** DICOM PN, e.g. "DOE^JANE". */
  patientName: string;
  /** YYYYMMDD, default "19500101". */
  patientBirthDate?: string;
  patientSex?: "M" | "F" | "O";
  /** Default: derived from accession and seed under {@link SYNTHETIC_UID_ROOT}. */
  studyInstanceUid?: string;
  /** Default CT. */
  modality?: "CT" | "MR";
  /** Slices per series, default 32. */
  slices?: number;
  /** Default 128. */
  rows?: number;
  /** Default 128. */
  columns?: number;
  /** Series per study, default 1. */
  series?: number;
  /** Pixel data, dates and UIDs are deterministic from it. Default 0. */
  seed?: number;
  /** Identifying extras a real scanner writes, so de-identification has something to remove. */
  institutionName?: string;
}

/** The UID root of every synthetic study, series and instance. */
export const SYNTHETIC_UID_ROOT = "1.2.826.0.1.3680043.10.543.99";

const SOP_CLASS = { CT: "1.2.840.10008.5.1.4.1.1.2", MR: "1.2.840.10008.5.1.4.1.1.4" } as const;

/** Part-10 files (one per slice per series, series by series), deterministic for the same options. */
export function syntheticStudy(opts: SyntheticStudyOptions): Uint8Array[] {
  const o = withDefaults(opts);
  const studyUid = opts.studyInstanceUid ?? uidUnder(SYNTHETIC_UID_ROOT, "study", o.accessionNumber, o.seed);
  const frameOfReferenceUid = uidUnder(SYNTHETIC_UID_ROOT, "frame", studyUid);
  const study = studyElements(o, studyUid);
  const files: Uint8Array[] = [];
  for (let s = 0; s < o.series; s++) {
    const seriesUid = uidUnder(SYNTHETIC_UID_ROOT, "series", studyUid, s);
    const sopUids = Array.from({ length: o.slices }, (_, i) => uidUnder(SYNTHETIC_UID_ROOT, "sop", studyUid, s, i));
    const series = seriesElements(o, s, seriesUid, frameOfReferenceUid);
    const volume = new SyntheticVolume(o, s);
    for (let i = 0; i < o.slices; i++) {
      const dataset: data.DicomDataset = {
        ...study,
        ...series,
        ...sliceElements(o, s, i, sopUids[i]!, sopUids[0]!),
        "7FE00010": el("OW", volume.slice(i)),
      };
      files.push(writePart10(metaHeader(SOP_CLASS[o.modality], sopUids[i]!), dataset, o.rows * o.columns * 2));
    }
  }
  return files;
}

type Options = Required<Omit<SyntheticStudyOptions, "studyInstanceUid">>;

function withDefaults(opts: SyntheticStudyOptions): Options {
  return {
    patientBirthDate: "19500101",
    patientSex: "F",
    modality: "CT",
    slices: 32,
    rows: 128,
    columns: 128,
    series: 1,
    seed: 0,
    institutionName: "North General Hospital",
    ...definedOnly(opts),
  } as Options;
}

function definedOnly<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function el(vr: string, ...values: unknown[]): data.DicomElement {
  return { vr, Value: values };
}

function pn(name: string): data.DicomElement {
  return { vr: "PN", Value: [{ Alphabetic: name }] };
}

/** A UID under `root` whose last component is 64 bits of a hash of `parts` (≤ 50 characters). */
function uidUnder(root: string, ...parts: Array<string | number>): string {
  const digest = createHash("sha256").update(parts.join("\0")).digest();
  return `${root}.${digest.readBigUInt64BE(0)}`;
}

function metaHeader(sopClassUid: string, sopInstanceUid: string): data.DicomDataset {
  return {
    "00020001": el("OB", new Uint8Array([0, 1]).buffer),
    "00020002": el("UI", sopClassUid),
    "00020003": el("UI", sopInstanceUid),
    "00020010": el("UI", EXPLICIT_VR_LITTLE_ENDIAN),
    "00020012": el("UI", `${SYNTHETIC_UID_ROOT}.0.1`),
    "00020013": el("SH", "FLIP_SYNTH_1"),
    "00020016": el("AE", "NGH_CT01"),
  };
}

/** Study date, study time and patient age, all deterministic from the seed. */
function studyDates(o: Options): { date: string; time: string; age: string } {
  const seed = Math.abs(Math.trunc(o.seed));
  const year = 2020 + (seed % 5);
  const month = 1 + (seed % 12);
  const day = 1 + (seed % 28);
  const date = `${year}${pad(month, 2)}${pad(day, 2)}`;
  const time = `${pad(8 + (seed % 9), 2)}${pad(seed % 60, 2)}00`;
  const birthYear = Number(o.patientBirthDate.slice(0, 4)) || 1950;
  const age = Math.max(0, Math.min(999, year - birthYear));
  return { date, time, age: `${pad(age, 3)}Y` };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

function studyElements(o: Options, studyUid: string): data.DicomDataset {
  const { date, time, age } = studyDates(o);
  const ct = o.modality === "CT";
  return {
    "00080005": el("CS", "ISO_IR 192"),
    "00080008": el("CS", "ORIGINAL", "PRIMARY", "AXIAL"),
    "00080012": el("DA", date),
    "00080013": el("TM", time),
    "00080016": el("UI", SOP_CLASS[o.modality]),
    "00080020": el("DA", date),
    "00080030": el("TM", time),
    "00080050": el("SH", o.accessionNumber),
    "00080060": el("CS", o.modality),
    "00080070": el("LO", "FLIP Synthetic Imaging"),
    "00080080": el("LO", o.institutionName),
    "00080081": el("ST", `1 Hospital Road, Northtown, ${o.institutionName}`),
    "00080090": pn("HOUSE^GREGORY^^DR"),
    "00081010": el("SH", ct ? "NGH-CT01" : "NGH-MR01"),
    "00081030": el("LO", `${ct ? "CT CHEST" : "MR BRAIN"} for ${o.patientName}`),
    "00081032": el("SQ", { "00080100": el("SH", ct ? "CTCHE" : "MRBRA"), "00080102": el("SH", "NGH"), "00080104": el("LO", ct ? "CT chest" : "MR brain") }),
    "00081048": pn("WILSON^JAMES"),
    "00081050": pn("CAMERON^ALLISON"),
    "00081060": pn("FOREMAN^ERIC"),
    "00081070": pn("CHASE^ROBERT"),
    "00081090": el("LO", ct ? "Phantom CT 64" : "Phantom MR 3T"),
    "00100010": pn(o.patientName),
    "00100020": el("LO", o.patientId),
    "00100030": el("DA", o.patientBirthDate),
    "00100040": el("CS", o.patientSex),
    "00101000": el("LO", `MRN-${o.patientId}`),
    "00101010": el("AS", age),
    "00101020": el("DS", 1.68),
    "00101030": el("DS", 71.5),
    "00101040": el("LO", "12 Elm Street, Northtown"),
    "00102154": el("SH", "+44 20 7946 0000"),
    "00104000": el("LT", `Patient ${o.patientName} (${o.patientId}) is claustrophobic.`),
    "00090010": el("LO", "ACME 1.0"),
    "00091001": el("LO", o.patientId),
    "00091002": el("LO", `scanned at ${o.institutionName}`),
    "00180015": el("CS", ct ? "CHEST" : "HEAD"),
    "00181000": el("LO", ct ? "SN-40417" : "SN-77003"),
    "0020000D": el("UI", studyUid),
    "00200010": el("SH", `S${o.accessionNumber.slice(-6)}`),
    "00321032": pn("HOUSE^GREGORY"),
    "00321060": el("LO", ct ? "CT chest with contrast" : "MR brain"),
    "00400244": el("DA", date),
    "00400245": el("TM", time),
    "00400253": el("SH", `PPS-${o.accessionNumber}`),
    "00400275": el("SQ", {
      "00400006": pn("CUDDY^LISA"),
      "00400007": el("LO", `${o.modality} for ${o.patientName}`),
      "00400009": el("SH", `SPS-${o.accessionNumber}`),
      "00401001": el("SH", `RP-${o.accessionNumber}`),
    }),
  };
}

function seriesElements(o: Options, s: number, seriesUid: string, frameOfReferenceUid: string): data.DicomDataset {
  const { date, time } = studyDates(o);
  const ct = o.modality === "CT";
  const seriesTime = `${time.slice(0, 2)}${pad((Number(time.slice(2, 4)) + s) % 60, 2)}00`;
  const spacing = pixelSpacing(o);
  return {
    "00080021": el("DA", date),
    "00080022": el("DA", date),
    "00080031": el("TM", seriesTime),
    "00080032": el("TM", seriesTime),
    "0008103E": el("LO", `${ct ? "Axial 5mm" : "T1 axial"} series ${s + 1}`),
    "00181030": el("LO", ct ? "CHEST_ROUTINE" : "BRAIN_T1"),
    "00180050": el("DS", sliceThickness(o)),
    "00180088": el("DS", sliceThickness(o)),
    ...(ct
      ? { "00180060": el("DS", 120) }
      : { "00180080": el("DS", 500), "00180081": el("DS", 10), "00180087": el("DS", 3) }),
    "0020000E": el("UI", seriesUid),
    "00200011": el("IS", s + 1),
    "00200037": el("DS", 1, 0, 0, 0, 1, 0),
    "00200052": el("UI", frameOfReferenceUid),
    "00280002": el("US", 1),
    "00280004": el("CS", "MONOCHROME2"),
    "00280010": el("US", o.rows),
    "00280011": el("US", o.columns),
    "00280030": el("DS", spacing, spacing),
    "00280100": el("US", 16),
    "00280101": el("US", 16),
    "00280102": el("US", 15),
    "00280103": el("US", ct ? 1 : 0),
    "00281050": el("DS", ct ? 40 : 600),
    "00281051": el("DS", ct ? 400 : 1200),
    "00281052": el("DS", ct ? -1024 : 0),
    "00281053": el("DS", 1),
  };
}

function sliceElements(o: Options, s: number, i: number, sopUid: string, firstSopUid: string): data.DicomDataset {
  const spacing = pixelSpacing(o);
  const z = (i - (o.slices - 1) / 2) * sliceThickness(o);
  const { date, time } = studyDates(o);
  const contentTime = `${time.slice(0, 4)}${pad((s * o.slices + i) % 60, 2)}`;
  return {
    "00080018": el("UI", sopUid),
    "00080023": el("DA", date),
    "00080033": el("TM", contentTime),
    ...(i > 0
      ? { "00081140": el("SQ", { "00081150": el("UI", SOP_CLASS[o.modality]), "00081155": el("UI", firstSopUid) }) }
      : {}),
    "00200013": el("IS", i + 1),
    "00200032": el("DS", (-o.columns * spacing) / 2, (-o.rows * spacing) / 2, z),
    "00201041": el("DS", z),
    "00204000": el("LT", `Slice ${i + 1} of ${o.patientName}, accession ${o.accessionNumber}`),
  };
}

function pixelSpacing(o: Options): number {
  return Math.round((350 / Math.max(o.rows, o.columns)) * 1000) / 1000;
}

function sliceThickness(o: Options): number {
  return o.modality === "CT" ? 5 : 4;
}

/**
 * A body ellipsoid with a bright sphere whose size and place depend on the seed, plus noise.
 * Stored values are unsigned (MR) or signed with a rescale intercept of -1024 (CT).
 */
class SyntheticVolume {
  readonly #o: Options;
  readonly #random: () => number;
  readonly #sphere: { x: number; y: number; z: number; r: number };
  readonly #levels: { air: number; body: number; lesion: number; noise: number };

  constructor(o: Options, series: number) {
    this.#o = o;
    this.#random = mulberry32(hash32(`${o.seed}\0${series}\0${o.accessionNumber}`));
    const r = this.#random;
    const minDim = Math.min(o.rows, o.columns);
    this.#sphere = {
      x: o.columns / 2 + (r() - 0.5) * 0.3 * o.columns,
      y: o.rows / 2 + (r() - 0.5) * 0.2 * o.rows,
      z: o.slices / 2 + (r() - 0.5) * 0.3 * o.slices,
      r: (0.06 + 0.1 * r()) * minDim,
    };
    this.#levels =
      o.modality === "CT"
        ? { air: -1000 + 1024, body: 40 + 1024, lesion: 300 + 1024 + series * 20, noise: 20 }
        : { air: 0, body: 400, lesion: 1200 + series * 50, noise: 30 };
  }

  /**
   * One slice as 16-bit samples in the platform's byte order (little-endian wherever Node runs).
   * Slices must be asked for in order: they draw their noise from one seeded stream.
   */
  slice(i: number): ArrayBuffer {
    const { rows, columns, slices } = this.#o;
    const { air, body, lesion, noise } = this.#levels;
    const sphere = this.#sphere;
    const out = new Uint16Array(rows * columns);
    const ax = 0.42 * columns;
    const ay = 0.3 * rows;
    const az = 0.7 * slices;
    const dz = (i - slices / 2) / az;
    const dzs = (i - sphere.z) ** 2;
    const r2 = sphere.r * sphere.r;
    const random = this.#random;
    for (let y = 0; y < rows; y++) {
      const dy = (y - rows / 2) / ay;
      const dys = (y - sphere.y) ** 2;
      for (let x = 0; x < columns; x++) {
        const dx = (x - columns / 2) / ax;
        const e = dx * dx + dy * dy + dz * dz;
        let v = air;
        if (e < 1) {
          // Soft tissue brightens slightly towards the centre: a smooth field, not a flat disc.
          v = body + (1 - e) * 30;
          const d2 = (x - sphere.x) ** 2 + dys + dzs;
          if (d2 < r2) v = lesion - (d2 / r2) * 80;
        }
        out[y * columns + x] = Math.max(0, Math.round(v + (random() - 0.5) * 2 * noise));
      }
    }
    return out.buffer;
  }
}

function hash32(text: string): number {
  return createHash("sha256").update(text).digest().readUInt32BE(0);
}

/** A small, fast, seeded PRNG; determinism matters here, not quality. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

import test from "ava";
import dcmjs from "dcmjs";
import type { data } from "dcmjs";
import { Part10WriteError, writePart10 } from "./part10-writer.js";

const meta: data.DicomDataset = {
  "00020002": { vr: "UI", Value: ["1.2.840.10008.5.1.4.1.1.7"] },
  "00020003": { vr: "UI", Value: ["1.2.3"] },
  "00020010": { vr: "UI", Value: ["1.2.840.10008.1.2.1"] },
};

function read(bytes: Uint8Array): data.DicomDict {
  return dcmjs.data.DicomMessage.readFile(new Uint8Array(bytes).buffer);
}

test("what it writes dcmjs reads back: strings, numbers, names, sequences and binary values", (t) => {
  const dataset: data.DicomDataset = {
    "00080060": { vr: "CS", Value: ["OT"] },
    "00100010": { vr: "PN", Value: [{ Alphabetic: "A^B", Ideographic: "C" }] },
    "00200032": { vr: "DS", Value: [1.5, -2, 0.3333333333333333] },
    "00200013": { vr: "IS", Value: [7] },
    "00280010": { vr: "US", Value: [3] },
    "00189087": { vr: "FD", Value: [2.25] },
    "00081140": { vr: "SQ", Value: [{ "00081155": { vr: "UI", Value: ["1.2.345"] } }, { "00081155": { vr: "UI", Value: ["1.2.6"] } }] },
    "7FE00010": { vr: "OW", Value: [new Uint16Array([1, 2, 65535]).buffer] },
  };
  const { meta: m, dict } = read(writePart10(meta, dataset));
  t.is(m["00020003"]!.Value![0], "1.2.3");
  t.is(dict["00080060"]!.Value![0], "OT");
  t.deepEqual(dict["00100010"]!.Value![0], { Alphabetic: "A^B", Ideographic: "C" });
  t.deepEqual(dict["00200032"]!.Value, [1.5, -2, 0.33333333333333], "a decimal string holds at most 16 characters");
  t.is(dict["00200013"]!.Value![0], 7);
  t.is(dict["00280010"]!.Value![0], 3);
  t.is(dict["00189087"]!.Value![0], 2.25);
  t.is(dict["00081140"]!.Value!.length, 2);
  t.is((dict["00081140"]!.Value![0] as data.DicomDataset)["00081155"]!.Value![0], "1.2.345");
  t.deepEqual([...new Uint16Array(dict["7FE00010"]!.Value![0] as ArrayBuffer)], [1, 2, 65535]);
});

test("values are padded to an even length and the meta group length is right", (t) => {
  const bytes = writePart10(meta, { "00080060": { vr: "CS", Value: ["CT1"] } });
  t.is(bytes.byteLength % 2, 0);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const groupLength = view.getUint32(140, true);
  t.is(view.getUint16(144 + groupLength, true), 0x0008, "the dataset starts right after the meta group");
});

test("a string read from a file is written back exactly as it was, padding aside", (t) => {
  const first = writePart10(meta, { "00200032": { vr: "DS", Value: ["1.50000", "-2.0", "3"] } });
  const again = read(first);
  t.deepEqual(writePart10(again.meta, again.dict), first);
});

test("a value too long for its VR is refused, naming the tag", (t) => {
  t.throws(() => writePart10(meta, { "00081030": { vr: "LO", Value: ["x".repeat(70000)] } }), { instanceOf: Part10WriteError, message: /\(0008,1030\)/ });
});

/**
 * The small part of dcmjs 0.52 that FLIP uses (the package ships no types). Datasets are in
 * dcmjs's "dict" form: keys are 8-hex-digit tags ("00100010"), values carry the VR and the values.
 */
declare module "dcmjs" {
  namespace data {
    /** A person name value as dcmjs reads and writes it. */
    interface PersonNameValue {
      Alphabetic?: string;
      Ideographic?: string;
      Phonetic?: string;
    }

    /**
     * One element. `Value` holds strings, numbers, person names, nested datasets (SQ), or
     * ArrayBuffers (OB/OW/UN and other binary VRs). `_rawValue` is what dcmjs read; when
     * `Value` is unchanged dcmjs writes `_rawValue` back.
     */
    interface DicomElement {
      vr: string;
      Value?: unknown[];
      _rawValue?: unknown;
    }

    type DicomDataset = Record<string, DicomElement>;

    interface ReadOptions {
      ignoreErrors?: boolean;
      untilTag?: string | null;
      includeUntilTagValue?: boolean;
      /** Share the input buffer instead of copying binary values. */
      noCopy?: boolean;
      forceStoreRaw?: boolean;
    }

    class DicomDict {
      constructor(meta: DicomDataset);
      meta: DicomDataset;
      dict: DicomDataset;
      write(options?: { allowInvalidVRLength?: boolean; fragmentMultiframe?: boolean }): ArrayBuffer;
    }

    class DicomMessage {
      static readFile(buffer: ArrayBuffer, options?: ReadOptions): DicomDict;
    }

    interface DictionaryEntry {
      tag: string;
      vr: string;
      name: string;
      vm: string;
      version: string;
    }

    class DicomMetaDictionary {
      static naturalizeDataset(dataset: DicomDataset): Record<string, unknown>;
      static denaturalizeDataset(dataset: Record<string, unknown>): DicomDataset;
      /** Keyed by "(GGGG,EEEE)". */
      static dictionary: Record<string, DictionaryEntry>;
      /** Keyed by keyword ("PatientName"). */
      static nameMap: Record<string, DictionaryEntry>;
    }
  }

  /** dcmjs's loglevel logger; its named children ("validation.dcmjs", ...) write to the console. */
  interface DcmjsLogger {
    setLevel(level: "trace" | "debug" | "info" | "warn" | "error" | "silent"): void;
    getLogger(name: string): DcmjsLogger;
    getLoggers(): Record<string, DcmjsLogger>;
  }

  const dcmjs: { data: typeof data; log: DcmjsLogger };
  export { data };
  export default dcmjs;
}

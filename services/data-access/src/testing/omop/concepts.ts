/**
 * The OMOP standard concepts the synthetic trusts use. Conditions, measurements, drugs, visits,
 * demographics and units carry their Athena concept ids and source codes; the imaging procedure and
 * anatomic-site ids are illustrative stand-ins with the right domain and vocabulary.
 */
export interface Concept {
  id: number;
  name: string;
  domain: "Gender" | "Race" | "Ethnicity" | "Condition" | "Measurement" | "Drug" | "Visit" | "Type Concept" | "Unit" | "Procedure" | "Observation" | "Meas Value" | "Spec Anatomic Site";
  vocabulary: string;
  conceptClass: string;
  code: string;
}

const c = (id: number, name: string, domain: Concept["domain"], vocabulary: string, conceptClass: string, code: string): Concept => ({
  id,
  name,
  domain,
  vocabulary,
  conceptClass,
  code,
});

export const GENDER = { male: c(8507, "MALE", "Gender", "Gender", "Gender", "M"), female: c(8532, "FEMALE", "Gender", "Gender", "Gender", "F") };

export const RACE = {
  white: c(8527, "White", "Race", "Race", "Race", "5"),
  black: c(8516, "Black or African American", "Race", "Race", "Race", "3"),
  asian: c(8515, "Asian", "Race", "Race", "Race", "2"),
};

export const ETHNICITY = {
  notHispanic: c(38003564, "Not Hispanic or Latino", "Ethnicity", "Ethnicity", "Ethnicity", "Not Hispanic"),
  hispanic: c(38003563, "Hispanic or Latino", "Ethnicity", "Ethnicity", "Ethnicity", "Hispanic"),
};

export const VISIT = {
  inpatient: c(9201, "Inpatient Visit", "Visit", "Visit", "Visit", "IP"),
  outpatient: c(9202, "Outpatient Visit", "Visit", "Visit", "Visit", "OP"),
  emergency: c(9203, "Emergency Room Visit", "Visit", "Visit", "Visit", "ER"),
};

export const EHR_TYPE = c(32817, "EHR", "Type Concept", "Type Concept", "Type Concept", "OMOP4976890");

export const CONDITION = {
  type2Diabetes: c(201826, "Type 2 diabetes mellitus", "Condition", "SNOMED", "Clinical Finding", "44054006"),
  type1Diabetes: c(201254, "Type 1 diabetes mellitus", "Condition", "SNOMED", "Clinical Finding", "46635009"),
  asthma: c(317009, "Asthma", "Condition", "SNOMED", "Clinical Finding", "195967001"),
  hypertension: c(316866, "Hypertensive disorder", "Condition", "SNOMED", "Clinical Finding", "38341003"),
  myocardialInfarction: c(4329847, "Myocardial infarction", "Condition", "SNOMED", "Clinical Finding", "22298006"),
  copd: c(255573, "Chronic obstructive lung disease", "Condition", "SNOMED", "Clinical Finding", "13645005"),
  atrialFibrillation: c(313217, "Atrial fibrillation", "Condition", "SNOMED", "Clinical Finding", "49436004"),
  heartFailure: c(316139, "Heart failure", "Condition", "SNOMED", "Clinical Finding", "84114007"),
  chronicKidneyDisease: c(46271022, "Chronic kidney disease", "Condition", "SNOMED", "Clinical Finding", "709044004"),
  depression: c(440383, "Depressive disorder", "Condition", "SNOMED", "Clinical Finding", "35489007"),
  osteoarthritis: c(80180, "Osteoarthritis", "Condition", "SNOMED", "Clinical Finding", "396275006"),
  obesity: c(433736, "Obesity", "Condition", "SNOMED", "Clinical Finding", "414916001"),
  hyperlipidemia: c(432867, "Hyperlipidemia", "Condition", "SNOMED", "Clinical Finding", "55822004"),
  stroke: c(381316, "Cerebrovascular accident", "Condition", "SNOMED", "Clinical Finding", "230690007"),
  lungCancer: c(443388, "Malignant tumor of lung", "Condition", "SNOMED", "Clinical Finding", "363358000"),
  breastCancer: c(4112853, "Malignant tumor of breast", "Condition", "SNOMED", "Clinical Finding", "254837009"),
  viralSinusitis: c(40481087, "Viral sinusitis", "Condition", "SNOMED", "Clinical Finding", "444814009"),
  viralPharyngitis: c(4112343, "Acute viral pharyngitis", "Condition", "SNOMED", "Clinical Finding", "195662009"),
  acuteBronchitis: c(260139, "Acute bronchitis", "Condition", "SNOMED", "Clinical Finding", "10509002"),
};

export const MEASUREMENT = {
  hba1c: c(3004410, "Hemoglobin A1c/Hemoglobin.total in Blood", "Measurement", "LOINC", "Lab Test", "4548-4"),
  bmi: c(3038553, "Body mass index (BMI) [Ratio]", "Measurement", "LOINC", "Clinical Observation", "39156-5"),
  systolicBp: c(3004249, "Systolic blood pressure", "Measurement", "LOINC", "Clinical Observation", "8480-6"),
  diastolicBp: c(3012888, "Diastolic blood pressure", "Measurement", "LOINC", "Clinical Observation", "8462-4"),
  cholesterol: c(3027114, "Cholesterol [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test", "2093-3"),
  creatinine: c(3016723, "Creatinine [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test", "2160-0"),
  heartRate: c(3027018, "Heart rate", "Measurement", "LOINC", "Clinical Observation", "8867-4"),
};

export const UNIT = {
  percent: c(8554, "percent", "Unit", "UCUM", "Unit", "%"),
  kgPerM2: c(9531, "kilogram per square meter", "Unit", "UCUM", "Unit", "kg/m2"),
  mmHg: c(8876, "millimeter mercury column", "Unit", "UCUM", "Unit", "mm[Hg]"),
  mgPerDl: c(8840, "milligram per deciliter", "Unit", "UCUM", "Unit", "mg/dL"),
  perMinute: c(8541, "per minute", "Unit", "UCUM", "Unit", "/min"),
};

export const DRUG = {
  metformin: c(1503297, "metformin", "Drug", "RxNorm", "Ingredient", "6809"),
  insulinGlargine: c(1502905, "insulin glargine", "Drug", "RxNorm", "Ingredient", "274783"),
  albuterol: c(1154343, "albuterol", "Drug", "RxNorm", "Ingredient", "435"),
  fluticasone: c(1149380, "fluticasone", "Drug", "RxNorm", "Ingredient", "41126"),
  lisinopril: c(1308216, "lisinopril", "Drug", "RxNorm", "Ingredient", "29046"),
  amlodipine: c(1332418, "amlodipine", "Drug", "RxNorm", "Ingredient", "17767"),
  atorvastatin: c(1545958, "atorvastatin", "Drug", "RxNorm", "Ingredient", "83367"),
  aspirin: c(1112807, "aspirin", "Drug", "RxNorm", "Ingredient", "1191"),
  metoprolol: c(1307046, "metoprolol", "Drug", "RxNorm", "Ingredient", "6918"),
  warfarin: c(1310149, "warfarin", "Drug", "RxNorm", "Ingredient", "11289"),
  acetaminophen: c(1125315, "acetaminophen", "Drug", "RxNorm", "Ingredient", "161"),
};

export const OBSERVATION = {
  smokingStatus: c(43054909, "Tobacco smoking status", "Observation", "LOINC", "Clinical Observation", "72166-2"),
};

export const SMOKING_VALUE = {
  never: c(4144272, "Never smoked tobacco", "Meas Value", "SNOMED", "Clinical Finding", "266919005"),
  former: c(4310250, "Ex-smoker", "Meas Value", "SNOMED", "Clinical Finding", "8517006"),
  current: c(4298794, "Smoker", "Meas Value", "SNOMED", "Clinical Finding", "77176002"),
};

/** Imaging procedures, one per modality the PACS holds. */
export const IMAGING_PROCEDURE = {
  CT: c(4020329, "Computed tomography of chest", "Procedure", "SNOMED", "Procedure", "169069000"),
  MR: c(4013636, "Magnetic resonance imaging of brain", "Procedure", "SNOMED", "Procedure", "816077007"),
  CR: c(4163872, "Plain chest X-ray", "Procedure", "SNOMED", "Procedure", "399208008"),
} as const;

export const ANATOMIC_SITE = {
  chest: c(4031729, "Chest", "Spec Anatomic Site", "SNOMED", "Body Structure", "51185008"),
  brain: c(4215591, "Brain structure", "Spec Anatomic Site", "SNOMED", "Body Structure", "12738006"),
};

/** Every concept above, for the `concept` table. */
export const ALL_CONCEPTS: readonly Concept[] = [
  ...Object.values(GENDER),
  ...Object.values(RACE),
  ...Object.values(ETHNICITY),
  ...Object.values(VISIT),
  EHR_TYPE,
  ...Object.values(CONDITION),
  ...Object.values(MEASUREMENT),
  ...Object.values(UNIT),
  ...Object.values(DRUG),
  ...Object.values(OBSERVATION),
  ...Object.values(SMOKING_VALUE),
  ...Object.values(IMAGING_PROCEDURE),
  ...Object.values(ANATOMIC_SITE),
];

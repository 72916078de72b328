/**
 * Trust profiles: each synthetic trust has its own age structure and case mix, so federated queries
 * return visibly different per-trust statistics.
 */
import { CONDITION, type Concept } from "./concepts.js";

export interface ConditionRisk {
  condition: Concept;
  /** Lifetime prevalence at age 20 and at age 75; interpolated linearly and clamped in between. */
  at20: number;
  at75: number;
  /** Chronic conditions are recorded once; acute ones may recur. */
  chronic: boolean;
}

export interface TrustProfile {
  name: string;
  /** Upper-case letters used in accession numbers, e.g. ACCNORTH000123. */
  accessionCode: string;
  meanAge: number;
  ageSd: number;
  femaleShare: number;
  /** Share of persons with at least one imaging study (before comorbidity uplift). */
  imagingRate: number;
  /** Relative weights of white, black, asian. */
  raceMix: readonly [number, number, number];
  smokingMix: { never: number; former: number; current: number };
  /** Multiplies the baseline risk of a condition, by concept id. */
  riskMultipliers: Readonly<Record<number, number>>;
}

/** Baseline risks, roughly shaped like UK primary-care prevalence. */
export const BASELINE_RISKS: readonly ConditionRisk[] = [
  { condition: CONDITION.type2Diabetes, at20: 0.01, at75: 0.2, chronic: true },
  { condition: CONDITION.type1Diabetes, at20: 0.005, at75: 0.006, chronic: true },
  { condition: CONDITION.asthma, at20: 0.14, at75: 0.08, chronic: true },
  { condition: CONDITION.hypertension, at20: 0.03, at75: 0.55, chronic: true },
  { condition: CONDITION.myocardialInfarction, at20: 0.001, at75: 0.09, chronic: true },
  { condition: CONDITION.copd, at20: 0.002, at75: 0.12, chronic: true },
  { condition: CONDITION.atrialFibrillation, at20: 0.001, at75: 0.12, chronic: true },
  { condition: CONDITION.heartFailure, at20: 0.001, at75: 0.07, chronic: true },
  { condition: CONDITION.chronicKidneyDisease, at20: 0.005, at75: 0.2, chronic: true },
  { condition: CONDITION.depression, at20: 0.12, at75: 0.1, chronic: true },
  { condition: CONDITION.osteoarthritis, at20: 0.01, at75: 0.4, chronic: true },
  { condition: CONDITION.obesity, at20: 0.12, at75: 0.25, chronic: true },
  { condition: CONDITION.hyperlipidemia, at20: 0.02, at75: 0.35, chronic: true },
  { condition: CONDITION.stroke, at20: 0.001, at75: 0.06, chronic: true },
  { condition: CONDITION.lungCancer, at20: 0, at75: 0.02, chronic: true },
  { condition: CONDITION.breastCancer, at20: 0.001, at75: 0.03, chronic: true },
  { condition: CONDITION.viralSinusitis, at20: 0.3, at75: 0.15, chronic: false },
  { condition: CONDITION.viralPharyngitis, at20: 0.35, at75: 0.1, chronic: false },
  { condition: CONDITION.acuteBronchitis, at20: 0.15, at75: 0.2, chronic: false },
];

export const PROFILES: Readonly<Record<string, TrustProfile>> = {
  /** An older, more deprived population: more diabetes, COPD and heart disease. */
  north: {
    name: "north",
    accessionCode: "NORTH",
    meanAge: 56,
    ageSd: 19,
    femaleShare: 0.52,
    imagingRate: 0.4,
    raceMix: [0.9, 0.03, 0.07],
    smokingMix: { never: 0.45, former: 0.3, current: 0.25 },
    riskMultipliers: {
      [CONDITION.type2Diabetes.id]: 1.8,
      [CONDITION.copd.id]: 1.6,
      [CONDITION.myocardialInfarction.id]: 1.4,
      [CONDITION.obesity.id]: 1.3,
      [CONDITION.asthma.id]: 0.8,
    },
  },
  /** A younger, urban population: more asthma, less chronic disease of old age. */
  south: {
    name: "south",
    accessionCode: "SOUTH",
    meanAge: 36,
    ageSd: 17,
    femaleShare: 0.5,
    imagingRate: 0.3,
    raceMix: [0.6, 0.2, 0.2],
    smokingMix: { never: 0.65, former: 0.2, current: 0.15 },
    riskMultipliers: {
      [CONDITION.asthma.id]: 1.8,
      [CONDITION.type2Diabetes.id]: 0.7,
      [CONDITION.copd.id]: 0.6,
      [CONDITION.depression.id]: 1.2,
    },
  },
  /** A middle-of-the-road trust. */
  central: {
    name: "central",
    accessionCode: "CENTRAL",
    meanAge: 45,
    ageSd: 20,
    femaleShare: 0.51,
    imagingRate: 0.35,
    raceMix: [0.8, 0.1, 0.1],
    smokingMix: { never: 0.55, former: 0.27, current: 0.18 },
    riskMultipliers: {},
  },
};

export function profileNamed(name: string): TrustProfile {
  const p = PROFILES[name];
  if (!p) throw new Error(`unknown trust profile ${JSON.stringify(name)}: expected one of ${Object.keys(PROFILES).join(", ")}`);
  return p;
}

/** The probability that a person of `age` in this profile has the condition. */
export function conditionRisk(profile: TrustProfile, risk: ConditionRisk, age: number): number {
  const t = Math.min(1, Math.max(0, (age - 20) / 55));
  const base = risk.at20 + (risk.at75 - risk.at20) * t;
  return Math.min(0.95, base * (profile.riskMultipliers[risk.condition.id] ?? 1));
}

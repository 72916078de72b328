export { federatedAverage } from "./federated-average.js";
export { IncompatibleUpdateError, type FedAvgInput, type FedAvgResult } from "./fedavg.js";
export {
  encodeSafetensorsHeader,
  parseSafetensorsHeader,
  readSafetensorsHeader,
  SafetensorsError,
  serializeSafetensors,
  type Dtype,
  type SafetensorsHeader,
  type TensorInfo,
} from "@flip/shared/safetensors/safetensors.js";

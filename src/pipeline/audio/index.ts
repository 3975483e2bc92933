/** Audio stages of the conversation engine: recorder, ambiance, caller-audio processors (denoise). */

export type { AmbianceOptions, LoadAmbianceOptions } from "./ambiance.js";
export { Ambiance, loadAmbiance } from "./ambiance.js";
export type { DenoiseOptions } from "./denoise.js";
export { DenoiseProcessor, denoiseProcessorFactory } from "./denoise.js";
export type { AudioProcessor, AudioProcessorFactory, ProcessorContext, ProcessorSpec } from "./processors.js";
export { ProcessorChain, ProcessorRegistry } from "./processors.js";
export type { RecorderOptions, RecorderSide } from "./recorder.js";
export { Recorder } from "./recorder.js";
export { RNNOISE_PACKAGE, RNNOISE_VERSION, loadRnnoise } from "./rnnoise.js";

import { denoiseProcessorFactory } from "./denoise.js";
import { ProcessorRegistry } from "./processors.js";

/** A registry with the built-in processors (`denoise`); register your own on it. */
export function createProcessorRegistry(): ProcessorRegistry {
  return new ProcessorRegistry().register(denoiseProcessorFactory);
}

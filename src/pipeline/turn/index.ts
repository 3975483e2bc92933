/**
 * Turn taking for the serial pipeline: pure, synchronous decision logic (time is an input), composed by the
 * pipeline with the providers and the media leg.
 */
export { SentenceSplitter, splitSentences, ABBREVIATIONS, type SentenceSplitterOptions } from "./sentence-splitter.js";
export {
  TurnDetector,
  turnDetectorOptions,
  DEFAULT_TURN_OPTIONS,
  type EouMode,
  type TurnDetectorOptions,
  type TurnInput,
  type TurnOutput,
  type TurnStats,
  type TurnTiming,
} from "./turn-detector.js";
export {
  InterruptionPolicy,
  interruptionOptions,
  DEFAULT_INTERRUPTION_OPTIONS,
  type InterruptionInput,
  type InterruptionOptions,
  type InterruptionOutput,
  type InterruptionStats,
  type InterruptionStrategy,
} from "./interruption.js";
export { heardText, type Heard, type SpokenSentence, type WordTiming } from "./heard-text.js";
export { FillerFilter, fillerWordsFor, type FillerWordsSetting } from "./filler.js";
export { joinText, normalizeForCompare, words } from "./text.js";

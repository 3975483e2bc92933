/** Public API of the audio layer: pure PCM16 DSP (plus WAV file I/O). */

export type { AudioFrame } from "./frame.js";
export { durationMs, frameDurationMs, samplesForMs, samplesPerMs } from "./frame.js";
export {
  aLawDecode,
  aLawDecodeSample,
  aLawEncode,
  aLawEncodeSample,
  muLawDecode,
  muLawDecodeSample,
  muLawEncode,
  muLawEncodeSample,
} from "./g711.js";
export { G722Decoder, G722Encoder, g722Decode, g722Encode, g722EncodedLength } from "./g722.js";
export { AlignedResampler, Resampler, resample } from "./resample.js";
export type { WavAudio } from "./wav.js";
export { decodeWav, downmixToMono, encodeWav, readWav, writeWav } from "./wav.js";
export type { WavWriterOptions } from "./wav-writer.js";
export { WavWriter } from "./wav-writer.js";
export type { FrameCallback, RechunkerOptions } from "./rechunk.js";
export { Rechunker } from "./rechunk.js";
export { GainRamp, dbToGain, mixInto } from "./mixer.js";
export { concatPcm, rms } from "./measure.js";
export { dtmfTones, DTMF_PAUSE_MS } from "./dtmf.js";

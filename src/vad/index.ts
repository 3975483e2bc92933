/**
 * Public API of the VAD layer: the engines (TinySilero, ONNX, WebRTC) behind one VadEngine interface, the
 * factory, and the speech detector.
 */
import { AppError } from "../errors.js";
import type { Logger } from "../log.js";
import { TinySileroEngine, type TinySileroOptions } from "./tinysilero/index.js";
import type { VadEngine, VadEngineType } from "./types.js";
import { VAD_ENGINE_TYPES } from "./types.js";

export type { VadEngine, VadEngineType, VadStream } from "./types.js";
export { VAD_ENGINE_TYPES, SILERO_GEOMETRY } from "./types.js";
export { SpeechDetector, SegmentTracker, detectSegments, segmentsOf, DEFAULT_DETECTOR_OPTIONS } from "./detector.js";
export type { DetectorOptions, SpeechDetectorOptions, SpeechSegment, VadEvent } from "./detector.js";
export { TinySileroEngine } from "./tinysilero/index.js";
export type { TinySileroOptions } from "./tinysilero/index.js";
export { SILERO_V5_SHA256, loadSileroWeights, sileroModelPath } from "./silero-model.js";

export interface CreateVadEngineOptions {
  /** Receives the one-time warning when TinySilero falls back to TypeScript. */
  logger?: Pick<Logger, "warn">;
  /** WebRTC aggressiveness 0-3 (default 3). */
  webrtcMode?: number;
  /** TinySilero kernel choice (tests and bench); default auto. */
  tinysilero?: Omit<TinySileroOptions, "logger">;
}

export function isVadEngineType(value: string): value is VadEngineType {
  return (VAD_ENGINE_TYPES as readonly string[]).includes(value);
}

const engines = new Map<string, Promise<VadEngine>>();

/**
 * The engine of a type (`tinysilero`, its alias `silero`, `onnx`, `webrtc`), created once per process and
 * options, then shared by every call. Throws AppError: PROVIDER_ERROR when the engine's package or library
 * cannot be loaded, INTERNAL for an unknown type or a model file that is not the expected one.
 */
export function createVadEngine(type: string, options: CreateVadEngineOptions = {}): Promise<VadEngine> {
  if (!isVadEngineType(type)) {
    return Promise.reject(
      new AppError("INTERNAL", `unknown VAD engine "${type}" (expected ${VAD_ENGINE_TYPES.join(", ")})`, { retryable: false }),
    );
  }
  const canonical = type === "silero" ? "tinysilero" : type;
  const key =
    canonical === "webrtc"
      ? `webrtc:${options.webrtcMode ?? 3}`
      : canonical === "tinysilero"
        ? `tinysilero:${options.tinysilero?.kernel ?? "auto"}:${options.tinysilero?.isa ?? -1}:${options.tinysilero?.modelPath ?? ""}`
        : canonical;
  let engine = engines.get(key);
  if (!engine) {
    engine = load(canonical, options);
    engines.set(key, engine);
    engine.catch(() => engines.delete(key)); // a failed load may be retried (e.g. after fixing the install)
  }
  return engine;
}

async function load(type: "tinysilero" | "onnx" | "webrtc", options: CreateVadEngineOptions): Promise<VadEngine> {
  switch (type) {
    case "tinysilero":
      return new TinySileroEngine({ ...options.tinysilero, ...(options.logger ? { logger: options.logger } : {}) });
    case "onnx": {
      const { OnnxVadEngine } = await import("./onnx.js");
      return new OnnxVadEngine();
    }
    case "webrtc": {
      const { WebRtcVadEngine } = await import("./webrtc.js");
      return WebRtcVadEngine.load(options.webrtcMode ?? 3);
    }
  }
}

/**
 * The backend table: one row (a `Backend` layer) per backend a plan can name. Programs never
 * branch on a backend's name; the CLI provides `Backends.get(plan.backend)` to a program that
 * works on one bottle, and programs that span bottles (ls, cleanup) look each one up here.
 * A new backend is one more row (docs/backends.md).
 */
import { Layer, LayerMap } from "effect"
import type { Backend as BackendName } from "../schema/Manifest.ts"
import type { Backend } from "../services/Backend.ts"
import * as DockerBackend from "./DockerBackend.ts"
import * as SmolmachinesBackend from "./SmolmachinesBackend.ts"

export const backendLayers: { readonly [B in BackendName]: Layer.Layer<Backend> } = {
  docker: DockerBackend.layer,
  smolmachines: SmolmachinesBackend.layer
}

export class Backends extends LayerMap.Service<Backends>()("bot-bottle/Backends", { layers: backendLayers }) {}

/** Every backend name, for programs that ask each backend (cleanup). */
export const backendNames = Object.keys(backendLayers) as ReadonlyArray<BackendName>

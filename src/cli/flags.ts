/**
 * Flags several commands share. Backend: --backend, else $BOTTLE_BACKEND, else the manifest.
 */
import { Flag } from "effect/cli"

export const manifestFlag = Flag.String("manifest").pipe(
  Flag.withDescription("Path to bottle.yaml (default: found by walking up from the current directory)"),
  Flag.optional
)

export const backendFlag = Flag.Literals("backend", ["docker", "smolmachines"]).pipe(
  Flag.withDescription("Sandbox backend (overrides the manifest; default from $BOTTLE_BACKEND)"),
  Flag.optional
)

export const jsonFlag = Flag.Boolean("json").pipe(Flag.withDescription("Print machine-readable JSON"), Flag.withDefault(false))

export const nameFlag = Flag.String("name").pipe(
  Flag.withDescription("Bottle name (default: <agent>-<hash of the current directory>)"),
  Flag.optional
)

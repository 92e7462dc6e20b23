/**
 * V8 flags `bottle dash` sets for itself at run time (v8.setFlagsFromString, before the
 * dashboard loads): `--optimize-for-size` keeps V8 from growing the heap ahead of need. The
 * dashboard is long-lived and mostly idle; with the flag its heap stays near what it uses
 * (bench/dash.ts, 20 bottles: heap total ~64 MB → ~34 MB, process peak ~141 MB → ~116 MB) for
 * no measurable cost per refresh tick. `--max-semi-space-size=1` and `--single-threaded-gc`
 * (the egress daemon's) were measured too and saved nothing here. bench/dash.ts's measured
 * process sets the same flags the same way.
 */
import * as v8 from "node:v8"

export const DASH_V8_FLAGS: ReadonlyArray<string> = ["--optimize-for-size"]

export const applyDashV8Flags = (): void => {
  for (const flag of DASH_V8_FLAGS) v8.setFlagsFromString(flag)
}

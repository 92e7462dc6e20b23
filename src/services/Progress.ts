/**
 * Where launch progress goes: a reference (default: nowhere) that the CLI replaces with its
 * renderer. Reporting never fails and never blocks a launch.
 */
import { Context, Effect } from "effect"
import type { ProgressEvent } from "../schema/LaunchProgress.ts"

export const Progress = Context.Reference<{ readonly report: (event: ProgressEvent) => Effect.Effect<void> }>("bot-bottle/Progress", {
  defaultValue: () => ({ report: () => Effect.void })
})

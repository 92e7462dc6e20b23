/**
 * `bot-bottle/promise`: the public programs as Promises, for scripts that do not use Effect.
 * Each call runs the Effect program on `BottleLive` (or the layer given to `makeClient`).
 * A failure rejects with the program's typed error (an `Error` with `_tag` and `message`).
 *
 * `withBottle` is the scoped launch: the bottle is torn down when `use` settles (resolved or
 * rejected) or when `signal` aborts. Interrupting a script is the script's business: wire
 * SIGINT to an `AbortController` (docs/library.md shows how), or the process exits without
 * tearing down.
 */
import { Cause, Effect, Exit, type Layer, ManagedRuntime } from "effect"
import * as index from "./index.ts"
import type { BottleRow } from "./programs/bottles.ts"
import type { RunOptions, RunResult } from "./programs/run.ts"
import type { BottleHandle, BottleServices, EgressSummary, ExecOptions, OpenOptions } from "./programs/session.ts"
import type { AuditEntry } from "./schema/AuditLog.ts"
import type { BottlePlan } from "./schema/BottlePlan.ts"
import type { ExecResult } from "./services/Backend.ts"

export interface BottleClientHandle {
  readonly slug: string
  readonly plan: BottlePlan
  readonly exec: (argv: ReadonlyArray<string>, options?: ExecOptions) => Promise<ExecResult>
  readonly attach: (argv?: ReadonlyArray<string>, options?: Omit<ExecOptions, "stdin">) => Promise<number>
  readonly audit: () => Promise<ReadonlyArray<AuditEntry>>
  readonly egress: () => Promise<EgressSummary>
  readonly stop: () => Promise<ReadonlyArray<string>>
}

export interface BottleClient {
  readonly plan: (options: index.PlanOptions) => Promise<BottlePlan>
  readonly withBottle: <A>(plan: BottlePlan, use: (bottle: BottleClientHandle) => Promise<A>, options?: OpenOptions & { readonly signal?: AbortSignal }) => Promise<A>
  readonly run: (plan: BottlePlan, options?: RunOptions & { readonly signal?: AbortSignal }) => Promise<RunResult>
  readonly stop: (slug: string, options?: { readonly purge?: boolean }) => Promise<ReadonlyArray<string>>
  readonly ls: () => Promise<ReadonlyArray<BottleRow>>
  /** Releases the layer's resources. */
  readonly dispose: () => Promise<void>
}

/** Rejects with the first error of a failed run (the typed error itself), else the squashed cause. */
const settle = async <A>(exit: Promise<Exit.Exit<A, unknown>>): Promise<A> => {
  const e = await exit
  if (Exit.isSuccess(e)) return e.value
  throw Cause.squash(e.cause)
}

export const makeClient = (layer: Layer.Layer<BottleServices, never, never> = index.BottleLive): BottleClient => {
  const runtime = ManagedRuntime.make(layer)
  const go = <A, E>(effect: Effect.Effect<A, E, BottleServices>, signal?: AbortSignal) =>
    settle(runtime.runPromiseExit(effect, signal ? { signal } : undefined))
  const wrap = (h: BottleHandle): BottleClientHandle => ({
    slug: h.slug,
    plan: h.plan,
    exec: (argv, o) => go(h.exec(argv, o)),
    attach: (argv, o) => go(h.attach(argv, o)),
    audit: () => go(h.audit),
    egress: () => go(h.egress),
    stop: () => go(h.stop)
  })
  return {
    plan: (options) => go(index.plan(options)),
    withBottle: (plan, use, options = {}) => {
      const { signal, ...open } = options
      return go(
        Effect.scoped(Effect.flatMap(index.launch(plan, open), (h) => Effect.tryPromise({ try: () => use(wrap(h)), catch: (e) => e }))),
        signal
      )
    },
    run: (plan, options = {}) => {
      const { signal, ...rest } = options
      return go(index.run(plan, rest), signal)
    },
    stop: (slug, options) => go(index.stop(slug, options)),
    ls: () => go(index.ls()),
    dispose: () => runtime.dispose()
  }
}

/**
 * Type tests on the public surface (checked by tsc; vitest runs them as no-ops): what a script
 * sees through `bot-bottle`, `bot-bottle/testing` and `bot-bottle/promise`. Programs carry
 * their errors as typed values; `BottleLive` and `BottleTest()` each satisfy every program's
 * requirements; nothing but the exports is reachable.
 */
import { describe, expectTypeOf, it } from "vitest"
import { Effect, type Scope } from "effect"
import {
  type AuditEntry,
  type BackendError,
  type BottleHandle,
  BottleLive,
  type BottlePlan,
  type BottleRefused,
  type BottleRow,
  type BottleServices,
  type EgressSummary,
  type ExecResult,
  launch,
  type LaunchError,
  ls,
  type ManifestError,
  plan,
  run,
  type RunResult,
  type StateError,
  stop
} from "bot-bottle"
import { makeClient } from "bot-bottle/promise"
import { BottleTest, FakeEngine } from "bot-bottle/testing"

// Never called: only their types are looked at.
const launched = (p: BottlePlan) => launch(p)
const onLive = (p: BottlePlan) => Effect.scoped(launch(p)).pipe(Effect.provide(BottleLive))
const onTest = (p: BottlePlan) => run(p).pipe(Effect.provide(BottleTest()))
const promised = (p: BottlePlan) => makeClient().run(p)
const promisedWith = (p: BottlePlan) => makeClient(BottleTest()).withBottle(p, async (b) => (await b.exec(["true"])).exitCode)

describe("public surface types", () => {
  it("programs: typed errors, requirements BottleLive provides", () => {
    expectTypeOf<Effect.Success<ReturnType<typeof plan>>>().toEqualTypeOf<BottlePlan>()
    expectTypeOf<Effect.Error<ReturnType<typeof plan>>>().toEqualTypeOf<ManifestError | StateError>()
    expectTypeOf<Effect.Services<ReturnType<typeof plan>>>().toExtend<BottleServices>()
    expectTypeOf<ReturnType<typeof launched>>().toEqualTypeOf<Effect.Effect<BottleHandle, BottleRefused | LaunchError | StateError | BackendError, BottleServices | Scope.Scope>>()
    expectTypeOf<Effect.Error<ReturnType<typeof run>>>().toEqualTypeOf<BottleRefused | LaunchError | StateError | BackendError>()
    expectTypeOf<Effect.Success<ReturnType<typeof run>>>().toEqualTypeOf<RunResult>()
    expectTypeOf<Effect.Success<ReturnType<typeof ls>>>().toEqualTypeOf<Array<BottleRow>>()
    expectTypeOf<Effect.Success<ReturnType<typeof stop>>>().toEqualTypeOf<ReadonlyArray<string>>()
    expectTypeOf<ReturnType<typeof onLive>>().toEqualTypeOf<Effect.Effect<BottleHandle, BottleRefused | LaunchError | StateError | BackendError>>()
    expectTypeOf<ReturnType<typeof onTest>>().toEqualTypeOf<Effect.Effect<RunResult, BottleRefused | LaunchError | StateError | BackendError>>()
  })

  it("the handle: every method needs nothing more", () => {
    expectTypeOf<BottleHandle["exec"]>().returns.toEqualTypeOf<Effect.Effect<ExecResult, BackendError>>()
    expectTypeOf<BottleHandle["attach"]>().returns.toEqualTypeOf<Effect.Effect<number, BackendError>>()
    expectTypeOf<BottleHandle["egress"]>().toEqualTypeOf<Effect.Effect<EgressSummary, import("bot-bottle").AuditUnreadable>>()
    expectTypeOf<Effect.Success<BottleHandle["audit"]>>().toEqualTypeOf<ReadonlyArray<AuditEntry>>()
    expectTypeOf<Effect.Services<BottleHandle["stop"]>>().toEqualTypeOf<never>()
    expectTypeOf<keyof RunResult>().toEqualTypeOf<"slug" | "exitCode" | "output" | "stderr" | "durationMs" | "egress">()
  })

  it("testing and promise", () => {
    expectTypeOf<FakeEngine["Service"]["events"]>().toEqualTypeOf<Effect.Effect<ReadonlyArray<string>>>()
    expectTypeOf<ReturnType<typeof promised>>().toEqualTypeOf<Promise<RunResult>>()
    expectTypeOf<ReturnType<typeof promisedWith>>().toEqualTypeOf<Promise<number>>()
  })

  it("only the exports are reachable", () => {
    // @ts-expect-error a deep import is not part of the public module
    expectTypeOf<typeof import("bot-bottle/src/programs/launch.ts")>().toBeAny()
  })
})

/**
 * Version checks on Effect's SemVer: `bottle doctor`'s engine DNS-fix check (CVE-2024-29018)
 * and the smolvm minimum, including what hand-written comparisons get wrong (1.10 vs 1.8,
 * a pre-release of the minimum, distribution suffixes).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { engineHasDnsFix } from "../src/cli/doctor.ts"
import * as SmolvmLive from "../src/layers/Smolvm.ts"
import { CommandFailed, ProcessError, ProcessRunner, SpawnFailed } from "../src/services/ProcessRunner.ts"
import { parseSmolvmVersion, Smolvm, smolvmRecentEnough } from "../src/services/Smolvm.ts"

describe("engine DNS fix (CVE-2024-29018)", () => {
  it("26.0.0 and later, 25.0.5+ and 23.0.11+ have it; the rest do not", () => {
    for (const v of ["26.0.0", "27.3.1", "28.0.0-rc.1", "25.0.5", "25.0.14", "23.0.11", "23.0.17"]) assert.isTrue(engineHasDnsFix(v), v)
    for (const v of ["25.0.4", "24.0.9", "23.0.10", "20.10.24+dfsg1", "24.0.5-0ubuntu1~22.04.1", "", "unknown"]) assert.isFalse(engineHasDnsFix(v), v)
  })
})

describe("smolvm version", () => {
  const ok = (out: string) => {
    const v = parseSmolvmVersion(out)
    return v !== undefined && smolvmRecentEnough(v)
  }
  it("the minimum and later pass, by SemVer precedence", () => {
    assert.isTrue(ok("smolvm 1.9.0"))
    assert.isTrue(ok("smolvm 1.9.1\n"))
    assert.isTrue(ok("smolvm 1.10.0 (abc123)"), "1.10 is newer than 1.9")
    assert.isTrue(ok("2.0.0"))
  })
  it("older ones, and a pre-release of the minimum, do not", () => {
    assert.isFalse(ok("smolvm 1.2.0"))
    assert.isFalse(ok("smolvm 1.8.5"), "1.8 booted cached machines with open networking")
    assert.isFalse(ok("smolvm 1.9.0-rc.1"))
  })
  it("output without a version is no version", () => {
    assert.isUndefined(parseSmolvmVersion("smolvm dev build"))
  })

  const live = (run: ProcessRunner["Service"]["run"]) =>
    SmolvmLive.layer.pipe(Layer.provide(Layer.succeed(ProcessRunner, ProcessRunner.of({
      run,
      exec: () => Effect.die("unexpected exec"),
      watch: () => Effect.die("unexpected watch"),
      interactive: () => Effect.die("unexpected interactive")
    }))))

  it.effect("the live layer runs `smolvm --version` through the ProcessRunner and maps its failures", () =>
    Effect.gen(function*() {
      const seen: Array<ReadonlyArray<string>> = []
      const version = yield* Smolvm.pipe(
        Effect.flatMap((s) => s.version),
        Effect.provide(live((argv) => Effect.sync(() => (seen.push(argv), { stdout: "smolvm 1.9.1\n", stderr: "", exitCode: 0 }))))
      )
      assert.strictEqual(version, "1.9.1")
      assert.deepStrictEqual(seen, [["smolvm", "--version"]])
      const missing = yield* Smolvm.pipe(
        Effect.flatMap((s) => Effect.flip(s.version)),
        Effect.provide(live((argv) => Effect.fail(new ProcessError({ reason: new SpawnFailed({ argv, message: "spawn smolvm ENOENT" }) }))))
      )
      assert.strictEqual(missing.reason._tag, "Missing")
      const failed = yield* Smolvm.pipe(
        Effect.flatMap((s) => Effect.flip(s.version)),
        Effect.provide(live((argv) => Effect.fail(new ProcessError({ reason: new CommandFailed({ argv, exitCode: 2, stderr: "boom" }) }))))
      )
      assert.strictEqual(failed.reason._tag, "CommandFailed")
      const garbled = yield* Smolvm.pipe(
        Effect.flatMap((s) => Effect.flip(s.version)),
        Effect.provide(live(() => Effect.succeed({ stdout: "smolvm dev\n", stderr: "", exitCode: 0 })))
      )
      assert.strictEqual(garbled.reason._tag, "DecodeFailed")
    }))
})

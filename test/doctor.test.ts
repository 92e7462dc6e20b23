/**
 * `bottle doctor` as a user runs it (the built CLI, as in cli.test.ts): every failed check
 * says how to fix it, and any failed check is a non-zero exit. The engine is made unreachable
 * by pointing DOCKER_HOST nowhere; smolvm is a fake binary (the real one cannot run here).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { SMOLVM_MINIMUM } from "../src/services/Smolvm.ts"
import { bottleSync, NO_ENGINE, prepareCli, tmp } from "./support/cli.ts"

let cliDir = ""
/** The CLI with an unreachable engine by default; `env` is added last. */
const bottle = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => bottleSync(cliDir, args, { ...NO_ENGINE, ...env })

beforeAll(() => {
  cliDir = prepareCli()
}, 180_000)

/** A directory holding a fake `smolvm` that prints `version` (a PATH entry). */
const fakeSmolvm = (version: string) => {
  const dir = tmp("bb-doctor-bin-")
  fs.writeFileSync(path.join(dir, "smolvm"), `#!/bin/sh\n[ "$1" = --version ] && echo "smolvm ${version}" && exit 0\nexit 2\n`, { mode: 0o755 })
  return dir
}
const withPath = (dir: string) => ({ PATH: `${dir}${path.delimiter}${process.env["PATH"] ?? ""}` })

describe("bottle doctor", () => {
  it("an unreachable engine is a failed check that says how to fix it, and a non-zero exit", () => {
    const r = bottle(["doctor"])
    assert.notStrictEqual(r.status, 0)
    assert.match(r.stdout, /^✗ docker engine: the Docker engine is not reachable/m)
    assert.match(r.stdout, /^ {4}fix: install Docker and start its engine .*`docker info`$/m)
    assert.strictEqual(r.stderr.trim(), "bottle: 1 check failed")
  })

  it("a docker binary that cannot be run fails the engine check the same way", () => {
    const r = bottle(["doctor"], { BOTTLE_DOCKER: "/nonexistent/bin/docker" })
    assert.notStrictEqual(r.status, 0)
    assert.match(r.stdout, /^✗ docker engine: the Docker engine is not reachable: cannot run docker/m)
    assert.include(r.stdout, "fix: install Docker")
  })

  it("a writable state dir passes", () => {
    const state = tmp("bb-doctor-ok-")
    const r = bottle(["doctor"], { BOTTLE_STATE_DIR: state })
    assert.include(r.stdout, `✓ state dir: ${state}\n`)
  })

  it("a state dir that cannot be created fails, naming it and how to fix it", () => {
    // Under a regular file: no directory can be made there, not even by root.
    const file = path.join(tmp("bb-doctor-file-"), "not-a-dir")
    fs.writeFileSync(file, "")
    const state = path.join(file, "state")
    const r = bottle(["doctor"], { BOTTLE_STATE_DIR: state })
    assert.notStrictEqual(r.status, 0)
    assert.match(r.stdout, new RegExp(`^✗ state dir: ${state.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: .*ENOTDIR`, "m"))
    assert.include(r.stdout, "fix: make it writable, or point $BOTTLE_STATE_DIR at a writable directory")
    assert.strictEqual(r.stderr.trim(), "bottle: 2 checks failed", "the engine and the state dir")
  })

  it("smolvm missing is a warning that says how to fix it (the docker backend does not need it)", () => {
    const r = bottle(["doctor"], { PATH: tmp("bb-doctor-empty-path-") })
    assert.match(r.stdout, /^! smolvm: not found$/m)
    assert.include(r.stdout, `fix: install smolvm ≥ ${SMOLVM_MINIMUM} for --backend smolmachines (the docker backend does not need it)`)
    assert.strictEqual(r.stderr.trim(), "bottle: 1 check failed", "smolvm is not one of the failed checks")
  })

  it("smolvm older than the minimum is a warning that says to upgrade; a recent one passes", () => {
    const old = bottle(["doctor"], withPath(fakeSmolvm("1.2.0")))
    assert.match(old.stdout, new RegExp(`^! smolvm: version 1\\.2\\.0 is older than ${SMOLVM_MINIMUM.replaceAll(".", "\\.")}`, "m"))
    assert.include(old.stdout, "fix: upgrade smolvm")
    const recent = bottle(["doctor"], withPath(fakeSmolvm("1.9.1")))
    assert.match(recent.stdout, /^✓ smolvm: 1\.9\.1$/m)
  })

  it("reports hardware virtualization (KVM on Linux) as it finds it, a warning when missing, never a failed check", () => {
    const r = bottle(["doctor"])
    const kvm = fs.existsSync("/dev/kvm")
    if (process.platform === "linux") {
      assert.match(r.stdout, kvm ? /^(✓ hardware virtualization: KVM \(\/dev\/kvm is usable\)|! hardware virtualization: KVM: \/dev\/kvm is not usable by this user)$/m : /^! hardware virtualization: KVM: \/dev\/kvm does not exist$/m)
    }
    assert.strictEqual(r.stderr.trim(), "bottle: 1 check failed", "only the unreachable engine failed")
  })

  it("`bottle doctor <bottle>` for a bottle that does not exist: one line, non-zero", () => {
    const r = bottle(["doctor", "no-such-bottle"], { BOTTLE_STATE_DIR: tmp("bb-doctor-state-") })
    assert.notStrictEqual(r.status, 0)
    assert.strictEqual(r.stderr.trim(), `bottle: no bottle named "no-such-bottle" (see \`bottle ls\`)`)
  })
})

/**
 * The smolmachines live layers on recording fakes of what they drive: the Smolvm layer's argv
 * (pinned smolvm CLI), its bounded exec-ready poll and its release; the LoopbackAlias layer on
 * macOS (a recording ProcessRunner: no `ifconfig` runs here) and Linux; the isolation probe's
 * verdict, and its script run for real against a listening and a closed local port.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Ref } from "effect"
import * as LoopbackAliasLive from "../src/layers/LoopbackAlias.ts"
import * as SmolvmLive from "../src/layers/Smolvm.ts"
import * as StateStoreLive from "../src/layers/StateStore.ts"
import { PROBE_SCRIPT, probeTargets, probeVerdict } from "../src/programs/isolationProbe.ts"
import { CommandFailed, ProcessError, ProcessRunner, type RunResult } from "../src/services/ProcessRunner.ts"
import { StateStore } from "../src/services/StateStore.ts"

/** A ProcessRunner that records every argv and answers with `answer` (exit ≠ 0 fails `run`). */
const recordingRunner = (answer: (argv: ReadonlyArray<string>) => RunResult) =>
  Effect.gen(function*() {
    const calls = yield* Ref.make<ReadonlyArray<ReadonlyArray<string>>>([])
    const exec = (argv: ReadonlyArray<string>) => Ref.update(calls, (c) => [...c, argv]).pipe(Effect.as(answer(argv)))
    const runner = ProcessRunner.of({
      exec,
      run: (argv) =>
        exec(argv).pipe(Effect.flatMap((r) =>
          r.exitCode === 0 ? Effect.succeed(r) : Effect.fail(new ProcessError({ reason: new CommandFailed({ argv: [...argv], exitCode: r.exitCode, stderr: r.stderr }) }))
        )),
      watch: () => Effect.die(new Error("unexpected watch")),
      interactive: (argv) => exec(argv).pipe(Effect.map((r) => r.exitCode))
    })
    return { calls, runner }
  })
const ok = (stdout = ""): RunResult => ({ stdout, stderr: "", exitCode: 0 })
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p))

describe("Smolvm live layer (pinned CLI)", () => {
  it.live("machine: create with the allowlist, labels and env, start, poll exec until ready, undo the ownership remap; release stops and deletes", () =>
    Effect.gen(function*() {
      let notReady = 2
      let created = false
      const { calls, runner } = yield* recordingRunner((argv) => {
        const sub = argv.slice(1, 3).join(" ")
        if (sub === "machine create") created = true
        if (sub === "machine ls") return ok(JSON.stringify(created ? [{ name: "m1", state: "running", labels: { "bot-bottle.slug": "s" }, pid: 1, network: true, cpus: 1 }] : []))
        if (sub === "machine delete") created = false
        if (sub === "machine exec" && argv.includes("true") && notReady > 0) {
          notReady--
          return { stdout: "", stderr: "failed to connect to the guest agent", exitCode: 1 }
        }
        return ok()
      })
      const smolvm = yield* SmolvmLive.make.pipe(Effect.provideService(ProcessRunner, runner))
      yield* Effect.scoped(smolvm.machine({ name: "m1", from: "/c/a.smolmachine", env: { A: "1" }, labels: { "bot-bottle.slug": "s" }, allowCidrs: ["10.213.0.2/32"], dns: "10.213.0.2", memoryMib: 2048 }))
      const argvs = (yield* Ref.get(calls)).map((a) => a.join(" "))
      assert.deepStrictEqual(argvs, [
        "smolvm machine create --name m1 --from /c/a.smolmachine --allow-cidr 10.213.0.2/32 --label bot-bottle.slug=s -e A=1 --dns 10.213.0.2 --mem 2048",
        "smolvm machine start --name m1",
        "smolvm machine exec --name m1 -- true",
        "smolvm machine exec --name m1 -- true",
        "smolvm machine exec --name m1 -- true",
        "smolvm machine exec --name m1 -- sh -c chown -R node:node /home/node && chmod 1777 /tmp /var/tmp",
        "smolvm machine ls --json",
        "smolvm machine stop --name m1",
        "smolvm machine delete --name m1 --force"
      ])
    }))

  it.effect("stop keeps the machine: `machine stop` for a running one, nothing for a stopped or gone one, never delete", () =>
    Effect.gen(function*() {
      const state: Record<string, string> = { up: "running", down: "stopped" }
      const { calls, runner } = yield* recordingRunner((argv) => {
        const sub = argv.slice(1, 3).join(" ")
        if (sub === "machine ls") return ok(JSON.stringify(Object.entries(state).map(([name, s]) => ({ name, state: s }))))
        if (sub === "machine stop") state[argv[4]!] = "stopped"
        return ok()
      })
      const smolvm = yield* SmolvmLive.make.pipe(Effect.provideService(ProcessRunner, runner))
      yield* smolvm.stop("up")
      yield* smolvm.stop("down")
      yield* smolvm.stop("gone")
      const argvs = (yield* Ref.get(calls)).map((a) => a.join(" "))
      assert.deepStrictEqual(argvs.filter((a) => !a.endsWith("ls --json")), ["smolvm machine stop --name up"])
      assert.deepStrictEqual(state, { up: "stopped", down: "stopped" })
    }))

  it.live("start of a kept machine: start, poll exec until ready, undo the ownership remap (no create)", () =>
    Effect.gen(function*() {
      const { calls, runner } = yield* recordingRunner(() => ok())
      const smolvm = yield* SmolvmLive.make.pipe(Effect.provideService(ProcessRunner, runner))
      yield* smolvm.start("kept")
      assert.deepStrictEqual((yield* Ref.get(calls)).map((a) => a.join(" ")), [
        "smolvm machine start --name kept",
        "smolvm machine exec --name kept -- true",
        "smolvm machine exec --name kept -- sh -c chown -R node:node /home/node && chmod 1777 /tmp /var/tmp"
      ])
    }))

  it.live("a machine whose exec never gets ready fails NotReady (bounded), and is still deleted", () =>
    Effect.gen(function*() {
      let created = false
      const { calls, runner } = yield* recordingRunner((argv) => {
        const sub = argv.slice(1, 3).join(" ")
        if (sub === "machine create") created = true
        if (sub === "machine ls") return ok(JSON.stringify(created ? [{ name: "m2", state: "running" }] : []))
        if (sub === "machine delete") created = false
        if (sub === "machine exec") return { stdout: "", stderr: "agent not ready", exitCode: 1 }
        return ok()
      })
      const smolvm = yield* SmolvmLive.make.pipe(Effect.provideService(ProcessRunner, runner))
      const exit = yield* Effect.exit(Effect.scoped(smolvm.machine({ name: "m2", from: "/a.smolmachine", env: {}, labels: {}, allowCidrs: ["10.0.0.2/32"], readyTimeoutMs: 200 })).pipe(Effect.provide(Layer.empty)))
      assert.isTrue(Exit.isFailure(exit))
      assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /did not accept an exec within 200 ms \(last: agent not ready\)/)
      assert.include((yield* Ref.get(calls)).map((a) => a.join(" ")), "smolvm machine delete --name m2 --force")
    }).pipe(Effect.provide(Layer.empty)), { timeout: 10_000 })

  it.effect("exec passes the env again on every call; version and ls --json are decoded with Schema", () =>
    Effect.gen(function*() {
      const { calls, runner } = yield* recordingRunner((argv) =>
        argv[1] === "--version" ? ok("smolvm 1.9.3\n") : argv[2] === "ls" ? ok("[{\"name\": 3}]") : ok("hi\n")
      )
      const smolvm = yield* SmolvmLive.make.pipe(Effect.provideService(ProcessRunner, runner))
      assert.strictEqual(yield* smolvm.version, "1.9.3")
      assert.strictEqual(yield* smolvm.ensureRecent, "1.9.3")
      yield* smolvm.exec("m", ["echo", "hi"], { env: { K: "v" }, workdir: "/workspace" })
      yield* smolvm.exec("m", ["echo", "hi"], { env: { K: "v" } })
      const argvs = (yield* Ref.get(calls)).slice(2).map((a) => a.join(" "))
      assert.deepStrictEqual(argvs, ["smolvm machine exec --name m -e K=v -w /workspace -- echo hi", "smolvm machine exec --name m -e K=v -- echo hi"])
      const bad = yield* Effect.flip(smolvm.list)
      assert.strictEqual(bad.reason._tag, "DecodeFailed")
    }))

  it.effect("a too-old smolvm is TooOld, naming the version to install", () =>
    Effect.gen(function*() {
      const { runner } = yield* recordingRunner(() => ok("smolvm 1.8.3\n"))
      const smolvm = yield* SmolvmLive.make.pipe(Effect.provideService(ProcessRunner, runner))
      const e = yield* Effect.flip(smolvm.ensureRecent)
      assert.strictEqual(e.reason._tag, "TooOld")
      assert.include(e.message, "install smolvm 1.9.0 or later")
    }))

  it.effect("pack create is given OUT, never OUT.smolmachine, and returns the sidecar artifact", () =>
    Effect.gen(function*() {
      const { calls, runner } = yield* recordingRunner(() => ok())
      const smolvm = yield* SmolvmLive.make.pipe(Effect.provideService(ProcessRunner, runner))
      assert.strictEqual(yield* smolvm.packCreate("127.0.0.1:5000/a:b", "/c/t/agent"), "/c/t/agent.smolmachine")
      assert.deepStrictEqual((yield* Ref.get(calls))[0], ["smolvm", "pack", "create", "--image", "127.0.0.1:5000/a:b", "-o", "/c/t/agent"])
    }))
})

describe("LoopbackAlias live layer", () => {
  const withState = <A, E>(effect: Effect.Effect<A, E, StateStore>) => effect.pipe(Effect.provide(StateStoreLive.layerAt(tmp("bb-alias-state-"))))

  it.effect("macOS: leases 127.0.0.x, adds it with sudo ifconfig, removes it and frees the lease at release", () =>
    withState(Effect.gen(function*() {
      const { calls, runner } = yield* recordingRunner(() => ok())
      const alias = yield* LoopbackAliasLive.make("darwin").pipe(Effect.provideService(ProcessRunner, runner))
      assert.isTrue(alias.needsAlias)
      const endpoint = yield* Effect.scoped(Effect.gen(function*() {
        const e = yield* alias.endpoint("b1", "10.213.0.2")
        assert.deepStrictEqual(yield* alias.current("b1", "10.213.0.2"), e, "exec finds the same endpoint later")
        const other = yield* alias.endpoint("b2", "10.213.1.2")
        assert.notStrictEqual(other.address, e.address, "another bottle gets another alias")
        return e
      }))
      assert.deepStrictEqual(endpoint, { allowCidr: "127.0.0.2/32", address: "127.0.0.2", publishOn: "127.0.0.2" })
      assert.deepStrictEqual((yield* Ref.get(calls)).map((a) => a.join(" ")), [
        "sudo -n ifconfig lo0 alias 127.0.0.2 up",
        "sudo -n ifconfig lo0 alias 127.0.0.3 up",
        "sudo -n ifconfig lo0 -alias 127.0.0.3",
        "sudo -n ifconfig lo0 -alias 127.0.0.2"
      ])
      assert.deepStrictEqual(yield* (yield* StateStore).leasesOf("b1"), [], "the lease is freed")
    })))

  it.effect("macOS: a bottle whose stopped machine is bound to its alias keeps the lease (not the alias) past the session, and gets the same address back", () =>
    withState(Effect.gen(function*() {
      const { calls, runner } = yield* recordingRunner(() => ok())
      const alias = yield* LoopbackAliasLive.make("darwin").pipe(Effect.provideService(ProcessRunner, runner))
      const kept = { keepIf: Effect.succeed(true) }
      const first = yield* Effect.scoped(alias.endpoint("b1", "10.213.0.2", kept))
      // Another bottle starts while b1 is stopped: it does not get b1's address.
      const other = yield* Effect.scoped(alias.endpoint("b2", "10.213.1.2"))
      const again = yield* Effect.scoped(alias.endpoint("b1", "10.213.0.2", kept))
      assert.strictEqual(first.address, "127.0.0.2")
      assert.strictEqual(other.address, "127.0.0.3")
      assert.deepStrictEqual(again, first)
      assert.deepStrictEqual((yield* Ref.get(calls)).map((a) => a.join(" ")), [
        "sudo -n ifconfig lo0 alias 127.0.0.2 up",
        "sudo -n ifconfig lo0 -alias 127.0.0.2",
        "sudo -n ifconfig lo0 alias 127.0.0.3 up",
        "sudo -n ifconfig lo0 -alias 127.0.0.3",
        "sudo -n ifconfig lo0 alias 127.0.0.2 up",
        "sudo -n ifconfig lo0 -alias 127.0.0.2"
      ], "the alias itself is removed at each session's end")
      assert.strictEqual((yield* (yield* StateStore).leasesOf("b1")).length, 1, "still held: `bottle stop --purge` frees it")
    })))

  it.effect("macOS: when sudo is not allowed, the failure says the exact command, and the lease is freed", () =>
    withState(Effect.gen(function*() {
      const { runner } = yield* recordingRunner(() => ({ stdout: "", stderr: "sudo: a password is required", exitCode: 1 }))
      const alias = yield* LoopbackAliasLive.make("darwin").pipe(Effect.provideService(ProcessRunner, runner))
      const e = yield* Effect.flip(Effect.scoped(alias.endpoint("b1", "10.213.0.2")))
      assert.include(e.message, "run `sudo ifconfig lo0 alias 127.0.0.2 up`")
      assert.deepStrictEqual(yield* (yield* StateStore).leasesOf("b1"), [])
    })))

  it.effect("macOS: `bottle stop` of a detached bottle removes the alias its lease names", () =>
    withState(Effect.gen(function*() {
      const { calls, runner } = yield* recordingRunner(() => ok())
      const alias = yield* LoopbackAliasLive.make("darwin").pipe(Effect.provideService(ProcessRunner, runner))
      yield* (yield* StateStore).takeLease(LoopbackAliasLive.LOOPBACK_POOL, LoopbackAliasLive.LOOPBACK_POOL_SIZE, "b1")
      yield* alias.release("b1")
      yield* alias.release("nobody")
      assert.deepStrictEqual((yield* Ref.get(calls)).map((a) => a.join(" ")), ["sudo -n ifconfig lo0 -alias 127.0.0.2"])
    })))

  it.effect("Linux: no alias and no sudo: the allowlist is the bundle's bridge address /32", () =>
    withState(Effect.gen(function*() {
      const { calls, runner } = yield* recordingRunner(() => ok())
      const alias = yield* LoopbackAliasLive.make("linux").pipe(Effect.provideService(ProcessRunner, runner))
      assert.isFalse(alias.needsAlias)
      const e = yield* Effect.scoped(alias.endpoint("b1", "10.213.4.2"))
      assert.deepStrictEqual(e, { allowCidr: "10.213.4.2/32", address: "10.213.4.2", publishOn: undefined })
      assert.deepStrictEqual(yield* Ref.get(calls), [])
    })))
})

describe("isolation probe", () => {
  it("targets: the bundle must answer; the gateway, another private range, a public address and metadata must not", () => {
    const t = probeTargets("10.213.4.2", "10.213.4.0/24")
    assert.deepStrictEqual(t.map((x) => [x.host, x.expect]), [
      ["10.213.4.2", "open"], ["10.213.4.1", "closed"], ["192.168.0.1", "closed"], ["1.1.1.1", "closed"], ["169.254.169.254", "closed"]
    ])
    assert.strictEqual(probeTargets("192.168.3.2", "192.168.3.0/24")[2]!.host, "172.16.0.1", "another range than the bottle's own")
  })

  it("verdict: a refusal is a host answering (reachable); unreadable output fails closed", () => {
    const rows = (outcomes: Array<string>) => JSON.stringify(probeTargets("10.0.0.2", "10.0.0.0/24").map((t, i) => ({ ...t, outcome: outcomes[i] })))
    assert.isTrue(probeVerdict(rows(["connected", "timeout", "blocked:ENETUNREACH", "timeout", "blocked:EHOSTUNREACH"])).ok)
    const bad = probeVerdict(rows(["connected", "refused", "timeout", "connected", "timeout"]))
    assert.isFalse(bad.ok)
    assert.deepStrictEqual(bad.problems, ["the bottle network's gateway (10.0.0.1:443) is reachable (refused)", "a public address (1.1.1.1:443) is reachable (connected)"])
    assert.deepStrictEqual(probeVerdict(rows(["timeout", "timeout", "timeout", "timeout", "timeout"])).problems, ["the bundle's egress proxy (10.0.0.2:3128) did not answer (timeout)"])
    assert.isFalse(probeVerdict("").ok)
    assert.isFalse(probeVerdict("[]").ok, "a probe that tried nothing is no pass")
  })

  it("the script, run for real: a listening port connects, a closed one is refused (reachable)", async () => {
    const server = net.createServer((s) => s.end()).listen(0, "127.0.0.1")
    await new Promise((r) => server.once("listening", r))
    const port = (server.address() as net.AddressInfo).port
    const closed = net.createServer().listen(0, "127.0.0.1")
    await new Promise((r) => closed.once("listening", r))
    const closedPort = (closed.address() as net.AddressInfo).port
    await new Promise((r) => closed.close(r))
    const targets = [{ label: "bundle", host: "127.0.0.1", port, expect: "open" }, { label: "closed", host: "127.0.0.1", port: closedPort, expect: "closed" }]
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ["-e", PROBE_SCRIPT, JSON.stringify(targets)], { encoding: "utf8" }, (e, stdout) => (e ? reject(e) : resolve(stdout)))
    })
    server.close()
    const report = probeVerdict(out)
    assert.deepStrictEqual(report.results.filter((r) => r.label !== "the host gateway").map((r) => [r.label, r.outcome, r.ok]), [["bundle", "connected", true], ["closed", "refused", false]])
  })
})

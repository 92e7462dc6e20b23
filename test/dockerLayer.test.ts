/**
 * The live Docker layer on a recording ProcessRunner: the argv it builds, that secret values
 * never reach a command line, how docker's failures map to typed errors (a missing object is
 * NotFound only in docker's own words), that bad JSON is a typed error, and that scoped
 * releases log instead of failing the scope. The engine itself is exercised by the e2e suite.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Redacted } from "effect"
import { make } from "../src/layers/Docker.ts"
import { Docker, type ContainerSpec } from "../src/services/Docker.ts"
import { CommandFailed, ProcessError, ProcessRunner, SpawnFailed, type RunOptions, type RunResult } from "../src/services/ProcessRunner.ts"

interface Call {
  readonly argv: ReadonlyArray<string>
  readonly options: RunOptions | undefined
}

/** What the fake `docker` answers to args (argv without the binary). */
type Answer = (args: ReadonlyArray<string>) => RunResult | "spawn-failed"

const ok = (stdout = ""): RunResult => ({ stdout, stderr: "", exitCode: 0 })
const failed = (stderr: string, exitCode = 1): RunResult => ({ stdout: "", stderr, exitCode })

/** A recording ProcessRunner and the live Docker layer on it. */
const recording = (answer: Answer) => {
  const calls: Array<Call> = []
  const respond = (argv: ReadonlyArray<string>, options: RunOptions | undefined, checkExit: boolean) =>
    Effect.suspend(() => {
      calls.push({ argv, options })
      const r = answer(argv.slice(1))
      if (r === "spawn-failed") return Effect.fail(new ProcessError({ reason: new SpawnFailed({ argv: [...argv], message: "spawn docker ENOENT" }) }))
      if (checkExit && r.exitCode !== 0) {
        return Effect.fail(new ProcessError({ reason: new CommandFailed({ argv: [...argv], exitCode: r.exitCode, stderr: r.stderr }) }))
      }
      return Effect.succeed(r)
    })
  const runner = Layer.succeed(ProcessRunner, ProcessRunner.of({
    run: (argv, options) => respond(argv, options, true),
    exec: (argv, options) => respond(argv, options, false),
    watch: (argv) => Effect.die(new Error(`fake runner: unexpected watch ${argv.join(" ")}`)),
    interactive: (argv) => Effect.die(new Error(`fake runner: unexpected interactive ${argv.join(" ")}`))
  }))
  return { calls, layer: Layer.effect(Docker, make).pipe(Layer.provide(runner)) }
}
const args = (calls: ReadonlyArray<Call>) => calls.map((c) => c.argv.slice(1))

const SECRET = "ghp_s3cr3t-value-that-must-never-be-in-argv"
const spec = (networks: ContainerSpec["networks"]): ContainerSpec => ({
  name: "bottle-x-bundle",
  image: "bot-bottle-bundle:abc",
  networks,
  env: { BOTTLE_SLUG: "x" },
  secretEnv: { GH_TOKEN: Redacted.make(SECRET) },
  labels: { "bot-bottle.slug": "x" },
  user: "1000:1000",
  extraArgs: ["--cap-drop", "ALL"]
})

const errorOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const e = Cause.findErrorOption(exit.cause)
  if (e._tag === "None") throw new Error(`expected a typed error, got ${Cause.pretty(exit.cause)}`)
  return e.value
}

describe("Docker layer: argv", () => {
  it.effect("a one-network container is one `docker run`; the secret travels in docker's environment, never argv", () => {
    const { calls, layer } = recording(() => ok("cid\n"))
    return Effect.gen(function*() {
      const docker = yield* Docker
      const c = yield* docker.runContainer(spec([{ name: "bottle-x-int", ip: "10.243.0.2" }]))
      assert.deepStrictEqual(c, { id: "cid", name: "bottle-x-bundle" })
      assert.deepStrictEqual(args(calls), [[
        "run", "--detach", "--name", "bottle-x-bundle", "--label", "bot-bottle.slug=x",
        "--network", "bottle-x-int", "--ip", "10.243.0.2",
        "--env", "BOTTLE_SLUG=x", "--env", "GH_TOKEN",
        "--user", "1000:1000", "--cap-drop", "ALL", "bot-bottle-bundle:abc"
      ]])
      assert.deepStrictEqual(calls[0]?.options?.env, { GH_TOKEN: SECRET })
    }).pipe(Effect.provide(layer))
  })

  it.effect("more networks: create → connect → start, and no call carries the secret in argv", () => {
    const { calls, layer } = recording(() => ok("cid\n"))
    return Effect.gen(function*() {
      const docker = yield* Docker
      yield* docker.runContainer(spec([{ name: "bottle-x-int" }, { name: "bottle-x-ext", aliases: ["egress"] }]))
      assert.deepStrictEqual(args(calls).map((a) => a.slice(0, 2)), [["create", "--name"], ["network", "connect"], ["start", "cid"]])
      assert.deepStrictEqual(args(calls)[1], ["network", "connect", "--alias", "egress", "bottle-x-ext", "cid"])
      assert.deepStrictEqual(calls[0]?.options?.env, { GH_TOKEN: SECRET })
      for (const c of calls) assert.isFalse(c.argv.some((a) => a.includes(SECRET)), c.argv.join(" "))
    }).pipe(Effect.provide(layer))
  })

  it.effect("a container whose extra network cannot be joined is removed again", () => {
    const { calls, layer } = recording((a) => (a[0] === "network" ? failed("Error response from daemon: failed to set up container networking") : ok("cid\n")))
    return Effect.gen(function*() {
      const docker = yield* Docker
      const e = errorOf(yield* Effect.exit(docker.runContainer(spec([{ name: "a" }, { name: "b" }]))))
      assert.strictEqual(e.reason._tag, "CommandFailed")
      assert.deepStrictEqual(args(calls).at(-1), ["rm", "--force", "--volumes", "cid"])
    }).pipe(Effect.provide(layer))
  })

  it.effect("an internal network has no host-side address and keeps fixed IPs out of its dynamic range", () => {
    const { calls, layer } = recording(() => ok("nid\n"))
    return Effect.gen(function*() {
      const docker = yield* Docker
      const n = yield* docker.createNetwork({ name: "bottle-x-int", internal: true, subnet: "10.243.0.0/24", ipRange: "10.243.0.128/25", labels: { "bot-bottle.slug": "x" } })
      assert.deepStrictEqual(n, { id: "nid", name: "bottle-x-int" })
      assert.deepStrictEqual(args(calls), [[
        "network", "create", "--driver", "bridge", "--internal", "--opt", "com.docker.network.bridge.inhibit_ipv4=true",
        "--subnet", "10.243.0.0/24", "--ip-range", "10.243.0.128/25", "--label", "bot-bottle.slug=x", "bottle-x-int"
      ]])
    }).pipe(Effect.provide(layer))
  })
})

describe("Docker layer: errors", () => {
  const mapped = (stderr: string) =>
    Effect.gen(function*() {
      const { layer } = recording(() => failed(stderr))
      return errorOf(yield* Effect.exit(Effect.flatMap(Docker, (d) => d.pullImage("some/image:1")).pipe(Effect.provide(layer))))
    })

  it.effect("an unreachable engine is Unavailable", () =>
    Effect.gen(function*() {
      const e = yield* mapped("Cannot connect to the Docker daemon at unix:///nonexistent/docker.sock. Is the docker daemon running?")
      assert.strictEqual(e.reason._tag, "Unavailable")
      assert.include(e.message, "the Docker engine is not reachable")
    }))

  it.effect("a docker binary that cannot be run is Unavailable, saying so", () =>
    Effect.gen(function*() {
      const { layer } = recording(() => "spawn-failed")
      const e = errorOf(yield* Effect.exit(Effect.flatMap(Docker, (d) => d.imageId("x")).pipe(Effect.provide(layer))))
      assert.strictEqual(e.reason._tag, "Unavailable")
      assert.include(e.message, "cannot run docker")
    }))

  it.effect("docker's own words for a missing object are NotFound", () =>
    Effect.gen(function*() {
      for (const stderr of [
        "Error response from daemon: No such container: bottle-x-agent",
        "Error response from daemon: No such network: bottle-x-int",
        "Error response from daemon: No such image: bot-bottle-agent:abc",
        "Error: No such object: bottle-x-agent",
        "Error response from daemon: network bottle-x-int not found"
      ]) {
        assert.strictEqual((yield* mapped(stderr)).reason._tag, "NotFound", stderr)
      }
    }))

  it.effect("other failures that merely say `not found` are not passed off as a missing object", () =>
    Effect.gen(function*() {
      for (const stderr of [
        "Error response from daemon: manifest for some/image:1 not found: manifest unknown",
        'Error response from daemon: plugin "weave" not found',
        'context "remote" not found: context not found',
        "Error response from daemon: pull access denied for some/image, repository does not exist"
      ]) {
        const e = yield* mapped(stderr)
        assert.strictEqual(e.reason._tag, "CommandFailed", stderr)
        if (e.reason._tag === "CommandFailed") assert.deepStrictEqual(e.reason.argv.slice(1), ["pull", "--quiet", "some/image:1"])
      }
    }))

  it.effect("removing what is already gone succeeds; a removal that really failed does not", () => {
    const { layer } = recording((a) =>
      a.includes("gone") ? failed(`Error response from daemon: No such container: gone`)
      : a.includes("gone-net") ? failed("Error response from daemon: network gone-net not found")
      : failed("Error response from daemon: could not kill container: tried to kill container, but did not receive an exit event")
    )
    return Effect.gen(function*() {
      const docker = yield* Docker
      yield* docker.removeContainer("gone")
      yield* docker.removeNetwork("gone-net")
      const e = errorOf(yield* Effect.exit(docker.removeContainer("stuck")))
      assert.strictEqual(e.reason._tag, "CommandFailed")
    }).pipe(Effect.provide(layer))
  })
})

describe("Docker layer: JSON output is decoded with Schema", () => {
  const info = (stdout: string) =>
    Effect.gen(function*() {
      const { layer } = recording(() => ok(stdout))
      return yield* Effect.exit(Effect.flatMap(Docker, (d) => d.info).pipe(Effect.provide(layer)))
    })

  it.effect("info: the server's OS and version", () =>
    Effect.gen(function*() {
      const exit = yield* info(JSON.stringify({ OperatingSystem: "Docker Desktop", ServerVersion: "28.2.2", ServerErrors: null, Extra: 1 }))
      assert.deepStrictEqual(exit, Exit.succeed({ operatingSystem: "Docker Desktop", serverVersion: "28.2.2" }))
    }))

  it.effect("info: no server version is Unavailable, with the server's errors", () =>
    Effect.gen(function*() {
      const e = errorOf(yield* info(JSON.stringify({ ServerVersion: "", ServerErrors: ["permission denied while trying to connect"] })))
      assert.strictEqual(e.reason._tag, "Unavailable")
      assert.include(e.message, "permission denied")
    }))

  it.effect("info: output that is not the JSON we expect is DecodeFailed, not a crash", () =>
    Effect.gen(function*() {
      for (const stdout of ["WARNING: not json", JSON.stringify({ ServerVersion: 28 })]) {
        assert.strictEqual(errorOf(yield* info(stdout)).reason._tag, "DecodeFailed", stdout)
      }
    }))

  it.effect("containerState: running, status and health (absent or null when there is no health check)", () =>
    Effect.gen(function*() {
      const states = [
        [{ Running: true, Status: "running", Health: { Status: "healthy", Log: [] }, Pid: 7 }, { running: true, status: "running", health: "healthy" }],
        [{ Running: false, Status: "exited" }, { running: false, status: "exited" }],
        [{ Running: true, Status: "running", Health: null }, { running: true, status: "running" }]
      ] as const
      for (const [raw, expected] of states) {
        const { calls, layer } = recording(() => ok(JSON.stringify(raw)))
        const s = yield* Effect.flatMap(Docker, (d) => d.containerState("bottle-x-agent")).pipe(Effect.provide(layer))
        assert.deepStrictEqual(s, expected)
        assert.deepStrictEqual(args(calls), [["inspect", "--format", "{{json .State}}", "bottle-x-agent"]])
      }
    }))

  it.effect("containerState: bad output is DecodeFailed", () =>
    Effect.gen(function*() {
      for (const stdout of ["", "{", JSON.stringify({ Running: "yes", Status: "running" })]) {
        const { layer } = recording(() => ok(stdout))
        const exit = yield* Effect.exit(Effect.flatMap(Docker, (d) => d.containerState("c")).pipe(Effect.provide(layer)))
        assert.strictEqual(errorOf(exit).reason._tag, "DecodeFailed", stdout)
      }
    }))
})

describe("Docker layer: scoped releases", () => {
  it.effect("failing removals are logged, never fail the scope, and every release still runs, in reverse", () => {
    const { calls, layer } = recording((a) =>
      a[0] === "rm" || (a[0] === "network" && a[1] === "rm")
        ? failed("Error response from daemon: driver failed programming external connectivity")
        : ok("id\n")
    )
    return Effect.gen(function*() {
      const docker = yield* Docker
      const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        yield* docker.network({ name: "bottle-x-int", internal: true, labels: {} })
        yield* docker.container(spec([{ name: "bottle-x-int" }]))
      })))
      assert.isTrue(Exit.isSuccess(exit), String(exit))
      assert.deepStrictEqual(args(calls).slice(2), [["rm", "--force", "--volumes", "bottle-x-bundle"], ["network", "rm", "bottle-x-int"]])
    }).pipe(Effect.provide(layer))
  })

  it.effect("releases run when the scope fails too", () => {
    const { calls, layer } = recording(() => ok("id\n"))
    return Effect.gen(function*() {
      const docker = yield* Docker
      const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        yield* docker.network({ name: "n", internal: false, labels: {} })
        return yield* Effect.fail("boom")
      })))
      assert.deepStrictEqual(exit, Exit.fail("boom"))
      assert.deepStrictEqual(args(calls).at(-1), ["network", "rm", "n"])
    }).pipe(Effect.provide(layer))
  })
})

describe("Docker layer: what the engine has", () => {
  // Lines as `docker ps|network ls|volume ls --format '{{json .}}'` print them (docker 20.10).
  const PS = `{"Command":"\\"sleep infinity\\"","CreatedAt":"2026-11-30 20:45:23 +0000 UTC","ID":"e5b02dac342d","Image":"bot-bottle-agent:abc","Labels":"bot-bottle.role=agent,bot-bottle.root=0a1b2c3d,bot-bottle.slug=x","LocalVolumes":"0","Mounts":"","Names":"bottle-x-0a1b2c3d-agent","Networks":"bottle-x-0a1b2c3d-int","Platform":null,"Ports":"","RunningFor":"34 seconds ago","Size":"0B","State":"running","Status":"Up 33 seconds (healthy)"}`
  const NET = `{"CreatedAt":"2026-11-30 20:33:45.662580858 +0000 UTC","Driver":"bridge","ID":"95577430d079","IPv4":"false","IPv6":"false","Internal":"true","Labels":"bot-bottle.slug=x,bot-bottle.role=internal","Name":"bottle-x-int","Scope":"local"}`
  // A volume has no ID (its name is its id).
  const VOL = `{"Availability":"N/A","Driver":"local","Group":"N/A","Labels":"bot-bottle.slug=x,bot-bottle.root=0a1b2c3d","Links":"N/A","Mountpoint":"/var/lib/docker/volumes/bottle-x-cache/_data","Name":"bottle-x-cache","Scope":"local","Size":"N/A","Status":"N/A"}`

  it.effect("listLabelled decodes containers, networks and volumes (which have no ID), with their slug and root labels", () => {
    const { calls, layer } = recording((a) => ok(a[0] === "ps" ? PS : a[0] === "network" ? NET : VOL))
    return Effect.gen(function*() {
      const found = yield* (yield* Docker).listLabelled("x")
      assert.deepStrictEqual(found, [
        { kind: "container", id: "e5b02dac342d", name: "bottle-x-0a1b2c3d-agent", slug: "x", root: "0a1b2c3d", state: "running", health: "healthy" },
        { kind: "network", id: "95577430d079", name: "bottle-x-int", slug: "x" },
        { kind: "volume", id: "bottle-x-cache", name: "bottle-x-cache", slug: "x", root: "0a1b2c3d" }
      ])
      assert.deepStrictEqual(args(calls).map((a) => a.slice(0, 2)), [["ps", "--all"], ["network", "ls"], ["volume", "ls"]])
      assert.isTrue(args(calls).every((a) => a.includes("label=bot-bottle.slug=x")))
    }).pipe(Effect.provide(layer))
  })

  it.effect("networkSubnets: every network's IPAM subnets, from one listing and one inspection", () => {
    const INSPECT = JSON.stringify([
      { Name: "bridge", IPAM: { Driver: "default", Options: null, Config: [{ Subnet: "172.17.0.0/16", Gateway: "172.17.0.1" }] } },
      { Name: "none", IPAM: { Driver: "default", Options: null, Config: [] } },
      { Name: "legacy", IPAM: { Driver: "default", Options: null, Config: null } },
      { Name: "dual", IPAM: { Config: [{ Subnet: "10.213.0.0/24" }, { Subnet: "fd00::/64" }, { IPRange: "x" }] } }
    ])
    const { calls, layer } = recording((a) => ok(a[1] === "ls" ? "id1\nid2\nid3\nid4\n" : INSPECT))
    return Effect.gen(function*() {
      assert.deepStrictEqual(yield* (yield* Docker).networkSubnets, [
        { name: "bridge", subnets: ["172.17.0.0/16"] },
        { name: "none", subnets: [] },
        { name: "legacy", subnets: [] },
        { name: "dual", subnets: ["10.213.0.0/24", "fd00::/64"] }
      ])
      assert.deepStrictEqual(args(calls), [["network", "ls", "--no-trunc", "--quiet"], ["network", "inspect", "id1", "id2", "id3", "id4"]])
    }).pipe(Effect.provide(layer))
  })

  it.effect("networkSubnets: a network removed between the listing and the inspection is looked up again; bad JSON is DecodeFailed", () => {
    let listings = 0
    const { layer } = recording((a) => {
      if (a[1] === "ls") return ok(++listings === 1 ? "gone\nkept\n" : "kept\n")
      return a.includes("gone") ? failed("Error response from daemon: network gone not found") : ok(`[{"Name":"kept","IPAM":{"Config":[{"Subnet":"10.213.5.0/24"}]}}]`)
    })
    const bad = recording((a) => ok(a[1] === "ls" ? "id1\n" : `[{"IPAM":{}}]`))
    return Effect.gen(function*() {
      assert.deepStrictEqual(yield* Effect.flatMap(Docker, (d) => d.networkSubnets).pipe(Effect.provide(layer)), [{ name: "kept", subnets: ["10.213.5.0/24"] }])
      const e = yield* Effect.flip(Effect.flatMap(Docker, (d) => d.networkSubnets).pipe(Effect.provide(bad.layer)))
      assert.strictEqual(e.reason._tag, "DecodeFailed")
    })
  })

  it.effect("a network the engine refuses because its subnet overlaps is SubnetOverlap (docker 20 and 25+ wording); other failures are not", () =>
    Effect.gen(function*() {
      const create = (stderr: string, subnet?: string) => {
        const { layer } = recording(() => failed(stderr))
        return Effect.flip(Effect.flatMap(Docker, (d) => d.createNetwork({ name: "n", internal: true, ...(subnet ? { subnet } : {}), labels: {} })).pipe(Effect.provide(layer)))
      }
      const v20 = yield* create("Error response from daemon: Pool overlaps with other one on this address space", "10.213.0.0/24")
      assert.deepStrictEqual(v20.reason._tag === "SubnetOverlap" ? [v20.reason.network, v20.reason.subnet] : v20.reason._tag, ["n", "10.213.0.0/24"])
      assert.include(v20.message, "subnet 10.213.0.0/24 overlaps")
      const v25 = yield* create("Error response from daemon: invalid pool request: Pool overlaps with other one on this address space", "10.213.0.0/24")
      assert.strictEqual(v25.reason._tag, "SubnetOverlap")
      // The bridge driver's words (seen on docker 20.10 with a foreign network on the subnet).
      const bridge = yield* create("Error response from daemon: cannot create network 1eca44dccdca (br-1eca44dccdca): conflicts with network fa8829dfc606 (br-fa8829dfc606): networks have overlapping IPv4", "10.213.0.0/24")
      assert.strictEqual(bridge.reason._tag, "SubnetOverlap")
      assert.strictEqual((yield* create("Error response from daemon: Pool overlaps with other one on this address space")).reason._tag, "CommandFailed", "no subnet asked: not ours to retry")
      assert.strictEqual((yield* create("Error response from daemon: network with name n already exists", "10.213.0.0/24")).reason._tag, "CommandFailed")
    }))
})

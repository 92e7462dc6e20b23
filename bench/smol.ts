/**
 * `npm run bench:smol`: the smolmachines image pipeline, with the live layers (Docker, Registry,
 * Cache, Smolvm) and the fake smolvm (test/support/fake-smolvm) on PATH, as the e2e tests run
 * it. Needs a Docker engine, root (the fake's iptables) and the agent image built (`bottle
 * start` once, or the e2e suite). Prints figures; asserts nothing.
 *
 * - cache-hit path: image id → cached artifact, nothing else (`docker image inspect` + the
 *   cache's size/identity check). Target ≤ 100 ms.
 * - cold pipeline: docker save, registry up, push, pack, boot (create + start + exec-ready +
 *   ownership fix), each timed, then the isolation probe on the booted machine (≤ 300 ms).
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer } from "effect"
import * as CacheLive from "../src/layers/Cache.ts"
import * as DockerLive from "../src/layers/Docker.ts"
import * as ProcessRunnerLive from "../src/layers/ProcessRunner.ts"
import * as RegistryLive from "../src/layers/Registry.ts"
import * as SmolvmLive from "../src/layers/Smolvm.ts"
import { probeArgv, probeTargets, probeVerdict } from "../src/programs/isolationProbe.ts"
import { agentImageSource, contextHash, imageTag } from "../src/programs/images.ts"
import { Cache } from "../src/services/Cache.ts"
import { Docker } from "../src/services/Docker.ts"
import { Registry } from "../src/services/Registry.ts"
import { Smolvm } from "../src/services/Smolvm.ts"

const root = path.resolve(import.meta.dirname, "..")
process.env["PATH"] = `${path.join(root, "test", "support", "fake-smolvm")}${path.delimiter}${process.env["PATH"] ?? ""}`
process.env["FAKE_SMOLVM_HOME"] ??= fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-smol-fake-"))
const runs = Number(process.env["BENCH_RUNS"] ?? 20)
const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-smol-cache-"))

const ms = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e6
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const p95 = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))]!
const timed = <A, E, R>(label: string, figures: Array<[string, number]>, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const t = process.hrtime.bigint()
    const a = yield* effect
    figures.push([label, ms(t)])
    return a
  })

const program = Effect.gen(function*() {
  const docker = yield* Docker
  const cache = yield* Cache
  const registry = yield* Registry
  const smolvm = yield* Smolvm
  // The agent image as `bottle start` builds it (the base's id is part of its tag).
  const refs = yield* docker.imageRefs("bot-bottle/agent")
  const extraCa = process.env["BOTTLE_EXTRA_CA_CERTS"] ? fs.readFileSync(process.env["BOTTLE_EXTRA_CA_CERTS"], "utf8") : ""
  const baseId = yield* docker.imageId("node:22-bookworm-slim")
  const wanted = imageTag(agentImageSource(), contextHash(agentImageSource(), extraCa, baseId))
  const image = refs.includes(wanted) ? wanted : refs[0]
  if (image === undefined) return yield* Effect.die(new Error("no bot-bottle/agent image: run `bottle start` once (or the e2e suite) first"))
  const imageId = yield* docker.imageId(image)

  // Cold pipeline.
  const figures: Array<[string, number]> = []
  const t0 = process.hrtime.bigint()
  const artifact = yield* Effect.scoped(Effect.gen(function*() {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "bottle-bench-smol-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(work, { recursive: true, force: true })))
    const tar = path.join(work, "agent.tar")
    yield* timed("docker save", figures, docker.saveImage(image, tar))
    const reg = yield* timed("registry up", figures, registry.ephemeral(`bench-${process.pid}`))
    const ref = yield* timed("push", figures, registry.pushArchive(reg, tar, `bot-bottle/agent:bench`))
    const packDir = yield* cache.tempPath("smolmachine")
    fs.mkdirSync(packDir, { recursive: true })
    const out = yield* timed("pack", figures, smolvm.packCreate(ref, path.join(packDir, "agent")))
    const stored = yield* cache.put("smolmachine", imageId, out)
    fs.rmSync(packDir, { recursive: true, force: true })
    return stored
  }))
  figures.push(["registry down + tarball removed", ms(t0) - figures.reduce((n, [, v]) => n + v, 0)])
  const size = fs.statSync(artifact).size

  // Boot and probe: a machine allowed nothing but a closed loopback address (the probe then
  // reports the bundle missing: what is timed is its cost).
  const probeMs = yield* Effect.scoped(Effect.gen(function*() {
    const name = `bench-${process.pid}`
    yield* timed("boot (create, start, exec-ready, ownership)", figures, smolvm.machine({ name, from: artifact, env: {}, labels: {}, allowCidrs: ["10.213.250.2/32"] }))
    const samples: Array<number> = []
    for (let i = 0; i < 5; i++) {
      const t = process.hrtime.bigint()
      const r = yield* smolvm.exec(name, ["setpriv", "--reuid=node", "--regid=node", "--init-groups", "--", ...probeArgv(probeTargets("10.213.250.2", "10.213.250.0/24"))], { env: {} })
      samples.push(ms(t))
      probeVerdict(r.stdout)
    }
    return median(samples)
  }))

  // Cache hit: image id → cached artifact, nothing else.
  const hits: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint()
    const id = yield* docker.imageId(image)
    const hit = yield* cache.get("smolmachine", id)
    if (hit === undefined) return yield* Effect.die(new Error("expected a cache hit"))
    hits.push(ms(t))
  }

  console.log(`smolmachines pipeline (${image}, artifact ${Math.ceil(size / 1024)} KB; fake smolvm, real Docker/registry/skopeo)`)
  console.log("cold pipeline:")
  for (const [label, v] of figures) console.log(`  ${label.padEnd(44)} ${v.toFixed(0).padStart(7)} ms`)
  console.log(`  ${"total".padEnd(44)} ${figures.reduce((n, [, v]) => n + v, 0).toFixed(0).padStart(7)} ms`)
  console.log(`isolation probe (exec + connects), median of 5: ${probeMs.toFixed(0)} ms (target ≤ 300 ms)`)
  console.log(`cache-hit path (image id → artifact), ${runs} runs: median ${median(hits).toFixed(1)} ms, p95 ${p95(hits).toFixed(1)} ms (target ≤ 100 ms)`)
})

const layers = Layer.mergeAll(
  RegistryLive.layer.pipe(Layer.provide(Layer.mergeAll(DockerLive.layer, ProcessRunnerLive.layer))),
  SmolvmLive.layer.pipe(Layer.provide(ProcessRunnerLive.layer)),
  CacheLive.layerAt(cacheDir),
  DockerLive.layer
)

Effect.runPromise(program.pipe(Effect.provide(layers))).then(
  () => fs.rmSync(cacheDir, { recursive: true, force: true }),
  (e) => {
    fs.rmSync(cacheDir, { recursive: true, force: true })
    console.error(e)
    process.exitCode = 1
  }
)

/**
 * Live Registry: the ephemeral OCI registry of the smolmachines image pipeline (DESIGN.md,
 * "Image pipeline"). Distribution from Debian's `docker-registry` package and skopeo from
 * Debian's `skopeo`, each in an image built (once, content-hashed) FROM the seeded base
 * (pipeline-images/), so nothing is pulled from a registry on the internet.
 *
 * Guarantees:
 * - the registry runs on a private per-session network, published on 127.0.0.1 only, at an
 *   ephemeral port (Docker picks it: no collision between parallel sessions);
 * - the tarball is pushed from a one-shot skopeo container on that network over plain HTTP,
 *   so the Docker daemon's insecure-registry policy (Docker Desktop's included) never comes
 *   into it; the tarball is mounted read-only;
 * - the registry, its network and the pusher are removed when their scope closes, on success,
 *   failure or interruption; releases log and never fail. Every object carries
 *   `bot-bottle.pipeline=<session>`.
 */
import * as path from "node:path"
import { Effect, Layer } from "effect"
import { packageRoot } from "../programs/assets.ts"
import { baseImageIds, ensureImage, type ImageSource } from "../programs/images.ts"
import { Docker } from "../services/Docker.ts"
import { ProcessRunner } from "../services/ProcessRunner.ts"
import { type EphemeralRegistry, Registry, RegistryError } from "../services/Registry.ts"

const DOCKER = process.env["BOTTLE_DOCKER"] ?? "docker"
export const PIPELINE_LABEL = "bot-bottle.pipeline"
const REGISTRY_PORT = 5000

const scriptsOf = (root: string) => ["install-extra-ca.sh", "apt-install.sh"].map((f) => ({ at: f, from: path.join(root, "scripts", f) }))
export const registryImageSource = (): ImageSource => ({
  name: "registry",
  files: [{ at: "Dockerfile", from: path.join(packageRoot(), "pipeline-images", "registry", "Dockerfile") }, ...scriptsOf(packageRoot())]
})
export const skopeoImageSource = (): ImageSource => ({
  name: "skopeo",
  files: [{ at: "Dockerfile", from: path.join(packageRoot(), "pipeline-images", "skopeo", "Dockerfile") }, ...scriptsOf(packageRoot())]
})

export const make = Effect.gen(function*() {
  const docker = yield* Docker
  const runner = yield* ProcessRunner
  const fail = (step: RegistryError["step"]) => (e: { readonly message: string }) => new RegistryError({ step, message: e.message })

  /** Both pipeline images, built when their context changed (a hash check otherwise). */
  const images = Effect.gen(function*() {
    const sources = [registryImageSource(), skopeoImageSource()]
    const baseIds = yield* baseImageIds(sources)
    const [registry, skopeo] = yield* Effect.all(sources.map((s) => ensureImage(s, { env: process.env, baseIds })), { concurrency: 2 })
    return { registry: registry!.tag, skopeo: skopeo!.tag }
  }).pipe(Effect.provideService(Docker, docker), Effect.mapError(fail("image")), Effect.cached)
  const pipelineImages = yield* images

  /** Polls the registry's API root until it answers 200 (bounded). */
  const waitReady = Effect.fnUntraced(function*(hostAddress: string, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs
    let last = ""
    while (Date.now() < deadline) {
      const ok = yield* Effect.tryPromise(() => fetch(`http://${hostAddress}/v2/`, { signal: AbortSignal.timeout(1000) })).pipe(
        Effect.map((r) => r.status === 200 || ((last = `HTTP ${r.status}`), false)),
        Effect.catch((e) => Effect.sync(() => ((last = String(e.cause ?? e)), false)))
      )
      if (ok) return
      yield* Effect.sleep(25)
    }
    return yield* new RegistryError({ step: "ready", message: `the registry at ${hostAddress} did not answer within ${timeoutMs} ms (${last})` })
  })

  const ephemeral = Effect.fn("Registry.ephemeral")(function*(session: string) {
    const { registry: image } = yield* pipelineImages
    const name = `bottle-reg-${session}`
    const labels = { [PIPELINE_LABEL]: session }
    yield* docker.network({ name, internal: false, labels }).pipe(Effect.mapError(fail("start")))
    yield* docker.container({
      name,
      image,
      networks: [{ name }],
      env: {},
      labels,
      extraArgs: ["--publish", `127.0.0.1::${REGISTRY_PORT}`, "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    }).pipe(Effect.mapError(fail("start")))
    const port = yield* runner.run([DOCKER, "port", name, `${REGISTRY_PORT}/tcp`]).pipe(
      Effect.map((r) => r.stdout.split("\n").map((l) => l.match(/^127\.0\.0\.1:(\d+)$/)?.[1]).find((p) => p !== undefined)),
      Effect.mapError(fail("start"))
    )
    if (port === undefined) return yield* new RegistryError({ step: "start", message: `the registry ${name} has no port published on 127.0.0.1` })
    const hostAddress = `127.0.0.1:${port}`
    yield* waitReady(hostAddress, 15_000)
    return { hostAddress, networkAddress: `${name}:${REGISTRY_PORT}`, network: name } satisfies EphemeralRegistry
  })

  const pushArchive = Effect.fn("Registry.pushArchive")(function*(registry: EphemeralRegistry, tarPath: string, repoTag: string) {
    const { skopeo } = yield* pipelineImages
    const name = `${registry.network}-push`
    // Scoped so that an interruption removes the pusher (a `docker run --rm` killed half-way
    // can leave its container behind).
    yield* Effect.scoped(Effect.acquireRelease(
      runner.run([
        DOCKER, "run", "--rm", "--name", name, "--label", `${PIPELINE_LABEL}=${registry.network}`, "--network", registry.network,
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--volume", `${path.dirname(tarPath)}:/in:ro`, skopeo,
        "copy", "--quiet", "--dest-tls-verify=false", `docker-archive:/in/${path.basename(tarPath)}`, `docker://${registry.networkAddress}/${repoTag}`
      ]).pipe(Effect.mapError(fail("push"))),
      () => runner.exec([DOCKER, "rm", "--force", name]).pipe(Effect.ignore)
    ))
    return `${registry.hostAddress}/${repoTag}`
  })

  return Registry.of({ ephemeral, pushArchive })
})

export const layer = Layer.effect(Registry, make)

/**
 * The smolmachines backend: the `Backend` service with the agent in a smolvm microVM and the
 * sidecar bundle in a container beside it (DESIGN.md, Backends and "Image pipeline").
 *
 * A bottle is: the bundle container on a per-bottle bridge network (`runtime.bundleNetwork`,
 * on the leased subnet, the bundle at its fixed address), and the agent machine
 * (`runtime.machine`) created from the agent image's `.smolmachine` artifact with exactly one
 * allowed address: the bundle's endpoint /32 (Linux: the bridge address; macOS: a per-bottle
 * loopback alias the bundle's ports are published on, src/layers/LoopbackAlias.ts).
 *
 * Images: the agent and bundle images are built as for docker; the agent image then travels
 * docker save → ephemeral registry → push (skopeo) → `smolvm pack create`, and the artifact is
 * cached by image id (src/layers/Cache.ts). A cache hit skips all of it; a per-image lock makes
 * parallel starts of one new image run the pipeline once. Registry, network and tarball are
 * released as soon as the artifact is published (and on failure or interruption).
 *
 * Guarantees (beside the Backend service's own):
 * - `preflight` refuses a smolvm older than SMOLVM_MINIMUM before anything is acquired;
 * - the machine's env is the bottle's plain env only, given again on every exec;
 * - nothing trusts `--allow-cidr`: `probe` checks from inside the guest, and launch fails closed;
 * - machines are found by their labels (slug, state root): `inspect`, `remove`, `removeOrphans`
 *   only ever see this root's machines;
 * - the bottle's state is its machine: a session's end and `remove` without volumes stop it and
 *   keep it (its disks hold the workspace and the home), a later `sandbox` starts it again
 *   without seeding; only a launch that failed before the agent ran, `remove` with volumes and
 *   `removeOrphans` delete one. While it exists the bottle keeps its address leases
 *   (`keepsAddress`): its allowlist cannot change, and a resume at another address is refused.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Layer, Option, Schema } from "effect"
import { agentImageSource, baseImageIds, bundleImageSource, ensureImage } from "../programs/images.ts"
import { namesIn, stateRootId } from "../programs/bottleNames.ts"
import { probeArgv, type ProbeReport, probeTargets, probeVerdict } from "../programs/isolationProbe.ts"
import { AGENT_HOME } from "../providers/claude.ts"
import type { BottlePlan } from "../schema/BottlePlan.ts"
import { EGRESS_PORT, GIT_GATE_PORT, SUPERVISE_PORT, subnetFor } from "../schema/Bundle.ts"
import { BUNDLE_LOG_PREFIX, READY_LINE, UNHEALTHY_LINE } from "../schema/BundleProtocol.ts"
import {
  Backend,
  BackendAddressTaken,
  BackendError,
  BackendFailed,
  BackendNotFound,
  BackendUnavailable,
  type BottleNetwork,
  type BottleState,
  type BundleSpec,
  type SandboxSpec,
  type SandboxUser
} from "../services/Backend.ts"
import { Cache } from "../services/Cache.ts"
import { Docker, type DockerError, LABEL_ROOT, LABEL_SLUG } from "../services/Docker.ts"
import { type BundleEndpoint, LoopbackAlias } from "../services/LoopbackAlias.ts"
import { Progress } from "../services/Progress.ts"
import { ProcessRunner } from "../services/ProcessRunner.ts"
import { Registry } from "../services/Registry.ts"
import { type MachineInfo, Smolvm, SMOLVM_MINIMUM, type SmolvmError } from "../services/Smolvm.ts"
import { StateStore } from "../services/StateStore.ts"
import * as CacheLive from "./Cache.ts"
import * as DockerLive from "./Docker.ts"
import { bundleContainer } from "./DockerBackend.ts"
import * as LoopbackAliasLive from "./LoopbackAlias.ts"
import * as ProcessRunnerLive from "./ProcessRunner.ts"
import * as RegistryLive from "./Registry.ts"
import { PIPELINE_LABEL } from "./Registry.ts"
import * as SmolvmLive from "./Smolvm.ts"
import * as StateStoreLive from "./StateStore.ts"

const BACKEND = "smolmachines"
const DOCKER = process.env["BOTTLE_DOCKER"] ?? "docker"
/** The cache namespace of `.smolmachine` artifacts, keyed by the agent image's id. */
export const ARTIFACT_NAMESPACE = "smolmachine"
/**
 * The label a machine carries its `--allow-cidr` in: smolvm cannot change a machine's allowlist
 * after create (`machine update` has no such flag at v1.9.3) and `ls --json` does not show it,
 * so a kept machine says itself which address it is bound to.
 */
export const LABEL_ALLOW_CIDR = "bot-bottle.allow-cidr"
/** In the bottle's state dir: the machine's workspace was seeded from the cwd (written once the copy is in). */
const SEEDED_FILE = "smolmachines-seeded.json"
const SeededRecord = Schema.Struct({ machine: Schema.String, seed: Schema.String })

const failed = (message: string) => new BackendError({ backend: BACKEND, reason: new BackendFailed({ message }) })
const fromDocker = (e: DockerError): BackendError =>
  new BackendError({
    backend: BACKEND,
    reason: e.reason._tag === "SubnetOverlap"
      ? new BackendAddressTaken({ subnet: e.reason.subnet, message: e.message })
      : e.reason._tag === "Unavailable"
      ? new BackendUnavailable({ message: e.message })
      : e.reason._tag === "NotFound"
      ? new BackendNotFound({ what: e.reason.what })
      : new BackendFailed({ message: e.message })
  })
const fromSmolvm = (e: SmolvmError): BackendError =>
  new BackendError({
    backend: BACKEND,
    reason: e.reason._tag === "Missing" || e.reason._tag === "TooOld" ? new BackendUnavailable({ message: e.message }) : new BackendFailed({ message: e.message })
  })
const asBackendError = (e: { readonly _tag: string; readonly message: string }): BackendError =>
  e instanceof BackendError ? e : failed(e.message)

/** The smolmachines part of a plan; a plan for another backend here is a bug in the backend table. */
const smolRuntime = (plan: BottlePlan) =>
  plan.runtime.backend === "smolmachines"
    ? Effect.succeed(plan.runtime)
    : Effect.die(new Error(`the smolmachines backend was given a ${plan.runtime.backend} plan`))

/** What `network` hands the bundle and the sandbox: the endpoint the VM is allowed to reach. */
interface SmolNetwork extends BottleNetwork {
  readonly endpoint: BundleEndpoint
}
const endpointOf = (net: BottleNetwork) => (net as SmolNetwork).endpoint

/** The bottle's env as the VM sees it: the bundle at the endpoint's address, HOME set. */
export const machineEnv = (plan: BottlePlan, endpoint: BundleEndpoint): Record<string, string> => {
  const env: Record<string, string> = { HOME: AGENT_HOME }
  for (const [k, v] of Object.entries(plan.env)) env[k] = endpoint.address === plan.network.bundleIp ? v : v.split(plan.network.bundleIp).join(endpoint.address)
  return env
}

/** smolvm's exec has no user flag: the agent's commands drop to node (uid 1000) inside. */
const asUser = (user: SandboxUser, argv: ReadonlyArray<string>) =>
  user === "root" ? argv : ["setpriv", "--reuid=node", "--regid=node", "--init-groups", "--", ...argv]

const MiB = (memory: string | undefined): number | undefined => {
  const m = memory?.match(/^(\d+)([kmg]?)b?$/i)
  if (!m) return undefined
  const n = Number(m[1])
  const unit = m[2]!.toLowerCase()
  return unit === "g" ? n * 1024 : unit === "k" ? Math.ceil(n / 1024) : unit === "m" ? n : Math.ceil(n / 1024 / 1024)
}

export const make = Effect.gen(function*() {
  const docker = yield* Docker
  const smolvm = yield* Smolvm
  const registry = yield* Registry
  const cache = yield* Cache
  const loopback = yield* LoopbackAlias
  const runner = yield* ProcessRunner
  const state = yield* StateStore
  const rootId = stateRootId(state.root)
  const names = (slug: string) => namesIn(rootId, slug)
  /** Whether `m` is this root's machine of bottle `slug`. */
  const isMachineOf = (slug: string) => (m: MachineInfo) => m.labels?.[LABEL_ROOT] === rootId && m.labels?.[LABEL_SLUG] === slug
  /** This root's machine of the bottle (running or stopped), if smolvm has one. */
  const machineOf = (slug: string) =>
    smolvm.list.pipe(
      Effect.map((ms) => ms.find(isMachineOf(slug))),
      Effect.mapError(fromSmolvm)
    )
  /**
   * A bottle's machine is kept from stop to resume (its disks are the workspace and the home),
   * and its allowlist is fixed at create: while it exists, the bottle keeps its addresses. When
   * smolvm cannot be asked, keep them too: a lease kept too long is freed by `stop --purge`;
   * an address handed to another bottle while a machine is bound to it is not undone.
   */
  const keepsAddress = (slug: string) => machineOf(slug).pipe(Effect.map((m) => m !== undefined), Effect.orElseSucceed(() => true))

  const detail = (line: string) =>
    Effect.gen(function*() {
      yield* (yield* Progress).report({ _tag: "BuildOutput", line: `smolmachines: ${line}` })
    })
  const timed = <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) =>
    Effect.gen(function*() {
      const t0 = Date.now()
      const a = yield* effect
      yield* detail(`${what} (${Date.now() - t0} ms)`)
      return a
    })

  /**
   * The image pipeline for one agent image (DESIGN.md, "Image pipeline"): the tarball, the
   * registry and its network live in this scope only, so they are gone once the artifact is
   * published, and on failure or interruption.
   */
  const buildArtifact = (imageRef: string, imageId: string) =>
    Effect.scoped(Effect.gen(function*() {
      const work = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "bottle-smol-pipeline-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const tar = path.join(work, "agent.tar")
      yield* timed("docker save", docker.saveImage(imageRef, tar).pipe(Effect.mapError(fromDocker)))
      const session = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`
      const reg = yield* timed("registry up", registry.ephemeral(session))
      const repoTag = `bot-bottle/agent:${imageId.replace(/^sha256:/, "").slice(0, 16)}`
      const ref = yield* timed("pushed", registry.pushArchive(reg, tar, repoTag))
      // The pack output goes inside the cache (same filesystem): publishing it is a rename.
      const packDir = yield* Effect.acquireRelease(
        cache.tempPath(ARTIFACT_NAMESPACE).pipe(Effect.tap((d) => Effect.sync(() => fs.mkdirSync(d, { recursive: true })))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const artifact = yield* timed("packed", smolvm.packCreate(ref, path.join(packDir, "agent")).pipe(Effect.mapError(fromSmolvm)))
      return yield* cache.put(ARTIFACT_NAMESPACE, imageId, artifact)
    }))

  /** The cached artifact of the agent image; on a miss, the pipeline, once per image across processes. */
  const artifactFor = Effect.fnUntraced(function*(imageRef: string) {
    const imageId = yield* docker.imageId(imageRef).pipe(Effect.mapError(fromDocker))
    const hit = yield* cache.get(ARTIFACT_NAMESPACE, imageId)
    if (hit !== undefined) {
      yield* detail(`cached artifact ${hit}`)
      return hit
    }
    return yield* Effect.scoped(Effect.gen(function*() {
      yield* cache.lock(ARTIFACT_NAMESPACE, imageId)
      // Another start may have published it while this one waited for the lock.
      const published = yield* cache.get(ARTIFACT_NAMESPACE, imageId)
      if (published !== undefined) {
        yield* detail(`cached artifact, built by a parallel start: ${published}`)
        return published
      }
      return yield* buildArtifact(imageRef, imageId)
    }))
  }, Effect.mapError(asBackendError))

  const waitForBundle = Effect.fnUntraced(function*(name: string, timeoutMs: number) {
    const line = yield* docker.waitForLogLine(name, (l) => l.startsWith(READY_LINE) || l.startsWith(UNHEALTHY_LINE)).pipe(
      Effect.mapError(fromDocker),
      Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.fail(failed(`the sidecar bundle did not become ready in ${timeoutMs} ms`)) })
    )
    if (line === undefined) return yield* failed(`the sidecar bundle exited; see \`docker logs ${name}\``)
    if (line.startsWith(UNHEALTHY_LINE)) return yield* failed(`the sidecar bundle is ${line.slice(BUNDLE_LOG_PREFIX.length)}`)
  })

  /** Copies a host directory's contents into the machine: one tarball through `machine cp`. */
  const copyDirIn = Effect.fnUntraced(function*(machine: string, hostDir: string, guestDir: string, options?: { readonly keepExisting?: boolean }) {
    const tar = yield* Effect.acquireRelease(
      Effect.sync(() => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "bottle-smol-cp-")), "in.tar")),
      (t) => Effect.sync(() => fs.rmSync(path.dirname(t), { recursive: true, force: true }))
    )
    yield* runner.run(["tar", "-C", hostDir, "-cf", tar, "."]).pipe(Effect.mapError((e) => failed(e.message)))
    const inGuest = `/tmp/bottle-cp-${Math.random().toString(36).slice(2)}.tar`
    yield* smolvm.copyTo(machine, tar, inGuest).pipe(Effect.mapError(fromSmolvm))
    const extract = options?.keepExisting === true ? 'tar --skip-old-files -C "$1" -xf "$2"' : 'tar -C "$1" -xf "$2"'
    const r = yield* smolvm.exec(machine, ["sh", "-c", `mkdir -p "$1" && ${extract} && rm -f "$2"`, "cp", guestDir, inGuest], { env: {} }).pipe(Effect.mapError(fromSmolvm))
    if (r.exitCode !== 0) return yield* failed(`copying ${hostDir} into the machine: ${r.stderr.trim() || `exit ${r.exitCode}`}`)
  }, Effect.scoped)

  const endpointNow = (plan: BottlePlan) =>
    loopback.current(plan.slug, plan.network.bundleIp).pipe(Effect.mapError((e) => failed(e.message)))

  const probe = Effect.fn("SmolmachinesBackend.probe")(function*(plan: BottlePlan) {
    const rt = yield* smolRuntime(plan)
    const endpoint = yield* endpointNow(plan)
    const r = yield* smolvm.exec(rt.machine, asUser("agent", probeArgv(probeTargets(endpoint.address, plan.network.subnet))), {
      env: machineEnv(plan, endpoint)
    }).pipe(Effect.mapError(fromSmolvm))
    const report = probeVerdict(r.stdout)
    if (report.ok) return report
    const version = yield* smolvm.version.pipe(Effect.orElseSucceed(() => "unknown"))
    return {
      ...report,
      advice: `smolvm ${version} did not hold the machine to --allow-cidr ${endpoint.allowCidr}; install smolvm ${SMOLVM_MINIMUM} or later (1.8 stopped dropping --allow-cidr beside --from, 1.9.0 fixed cache-served machines booting with open networking), or a newer release if this one already is`
    } satisfies ProbeReport
  })

  const inspect = Effect.fnUntraced(function*(slug?: string) {
    const machines = (yield* smolvm.list.pipe(Effect.mapError(fromSmolvm))).filter((m) =>
      m.labels?.[LABEL_ROOT] === rootId && (slug === undefined || m.labels?.[LABEL_SLUG] === slug)
    )
    const containers = (yield* docker.listLabelled(slug).pipe(Effect.mapError(fromDocker))).filter((r) => r.root === rootId && r.kind === "container")
    const slugs = [...new Set([...machines.map((m) => m.labels![LABEL_SLUG]!), ...containers.map((c) => c.slug)])]
    return slugs.map((s): BottleState => {
      const machine = machines.find((m) => m.labels![LABEL_SLUG] === s)
      // A stopped machine is the bottle's kept state (its disks), not a part that runs.
      const machineUp = machine !== undefined && machine.state !== "stopped"
      const bundle = containers.find((c) => c.slug === s && c.name === names(s).bundle)
      const parts = [...(machineUp ? [`machine ${machine.name}`] : []), ...containers.filter((c) => c.slug === s).map((c) => c.name)]
      const status = !machineUp && !bundle
        ? "stopped"
        : machine?.state !== "running" || bundle?.state !== "running"
        ? "degraded"
        : bundle.health === "unhealthy"
        ? "unhealthy"
        : "running"
      // Kept across stop/resume: the machine itself (its storage and overlay disks).
      return { slug: s, status, parts, volumes: machine ? [`machine ${machine.name}`] : [] }
    })
  })

  return Backend.of({
    name: BACKEND,
    preflight: smolvm.ensureRecent.pipe(Effect.asVoid, Effect.mapError(fromSmolvm)),
    addressesInUse: docker.networkSubnets.pipe(Effect.map((nets) => nets.flatMap((n) => n.subnets)), Effect.mapError(fromDocker)),
    images: Effect.fnUntraced(function*(spec) {
      const sources = spec.sources ?? { agent: agentImageSource(), bundle: bundleImageSource() }
      const progress = yield* Progress
      const onProgress = (line: string) => Effect.runSync(progress.report({ _tag: "BuildOutput", line }))
      const baseIds = yield* baseImageIds([sources.agent, sources.bundle]).pipe(Effect.provideService(Docker, docker), Effect.mapError(fromDocker))
      const [agent, bundle] = yield* Effect.all([
        ensureImage(sources.agent, { env: spec.env, baseIds, onProgress }).pipe(Effect.flatMap((a) => artifactFor(a.tag))),
        ensureImage(sources.bundle, { env: spec.env, baseIds, onProgress }).pipe(Effect.map((b) => b.tag))
      ], { concurrency: 2 }).pipe(Effect.provideService(Docker, docker), Effect.mapError((e) => ("_tag" in e && e._tag === "DockerError" ? fromDocker(e as DockerError) : asBackendError(e))))
      // For a machine the agent's "image" is its artifact.
      return { agent, bundle }
    }),
    network: Effect.fnUntraced(function*(plan) {
      const rt = yield* smolRuntime(plan)
      yield* docker.network({
        name: rt.bundleNetwork,
        internal: false,
        subnet: plan.network.subnet,
        ipRange: subnetFor(plan.network.subnetIndex).ipRange,
        labels: names(plan.slug).labels("internal")
      }).pipe(Effect.mapError(fromDocker))
      const endpoint = yield* loopback.endpoint(plan.slug, plan.network.bundleIp, { keepIf: keepsAddress(plan.slug) }).pipe(Effect.mapError((e) => failed(e.message)))
      return { complete: Effect.void, endpoint } satisfies SmolNetwork
    }),
    bundle: Effect.fnUntraced(function*(plan: BottlePlan, net: BottleNetwork, spec: BundleSpec) {
      const rt = yield* smolRuntime(plan)
      const endpoint = endpointOf(net)
      const base = bundleContainer(names(plan.slug), plan, rt.bundleNetwork, spec)
      const publish = endpoint.publishOn === undefined ? [] : [EGRESS_PORT, GIT_GATE_PORT, SUPERVISE_PORT].flatMap((p) => ["--publish", `${endpoint.publishOn}:${p}:${p}`])
      const container = yield* docker.container({ ...base, extraArgs: [...(base.extraArgs ?? []), ...publish] }).pipe(Effect.mapError(fromDocker))
      yield* waitForBundle(container.name, spec.readyTimeoutMs)
    }),
    sandbox: Effect.fnUntraced(function*(plan: BottlePlan, net: BottleNetwork, spec: SandboxSpec) {
      const rt = yield* smolRuntime(plan)
      if (spec.mounts.length > 0) return yield* failed("mount_cwd is not supported by the smolmachines backend yet; use copy_cwd, or --backend docker")
      const endpoint = endpointOf(net)
      const env = machineEnv(plan, endpoint)
      const machines = yield* smolvm.list.pipe(Effect.mapError(fromSmolvm))
      const found = machines.find(isMachineOf(plan.slug))
      if (found !== undefined && spec.fresh === true) {
        // A first launch: the state dir was just made, so a machine of this name is a leftover of
        // a bottle that is gone (as \`bottle cleanup\` would find it), not this bottle's work.
        yield* smolvm.remove(found.name).pipe(Effect.mapError(fromSmolvm))
      }
      const kept = spec.fresh === true ? undefined : found
      const stopKept = (name: string) =>
        smolvm.stop(name).pipe(Effect.catch((e) => Effect.logError(`could not stop smolvm machine ${name} (its state is kept): ${e.message}`)))
      if (kept !== undefined) {
        // The bottle's own machine, kept since its last session: its disks hold the workspace and
        // the home as the agent left them. It is bound to the address it was created for.
        const bound = kept.labels?.[LABEL_ALLOW_CIDR]
        if (bound !== endpoint.allowCidr) {
          return yield* failed(
            `the bottle's machine ${kept.name} holds its workspace and home, and smolvm holds it to ${bound ?? "an address it does not name"} (fixed when it was created), but this start got ${endpoint.allowCidr}: something outside this state root (another docker network on that subnet, say) has taken the old address. Free it and resume again, or discard the machine and the work on it with \`bottle stop --purge ${plan.slug}\``
          )
        }
        // Whatever happens from here, the machine is only ever stopped: it is the agent's work.
        yield* Effect.addFinalizer(() => stopKept(kept.name))
        yield* smolvm.start(kept.name).pipe(Effect.mapError(fromSmolvm))
        yield* detail(`machine ${kept.name} resumed with its workspace and home`)
      } else {
        // Not ours, not kept: a machine of that name without this root's labels is refused
        // rather than replaced (its removal below would delete something we did not make).
        const sameName = machines.find((m) => m !== found && m.name === rt.machine)
        if (sameName !== undefined) {
          return yield* failed(`a smolvm machine named ${rt.machine} exists that this state root did not make (labels ${JSON.stringify(sameName.labels ?? {})}); remove it with \`smolvm machine delete --name ${rt.machine}\` if it is not needed, or start the bottle under another --name`)
        }
        // A new machine: a launch that fails before the agent ran removes it (nothing of the
        // agent's is on it); once it has run, a session's end stops it and keeps it. The
        // create itself is not interrupted half-way (a machine smolvm made but did not record
        // could not be found again), so once it returns the release knows what exists.
        let created = false
        yield* Effect.addFinalizer((exit) =>
          !created
            ? Effect.void
            : exit._tag === "Success"
            ? stopKept(rt.machine)
            : smolvm.remove(rt.machine).pipe(Effect.catch((e) => Effect.logError(`could not remove smolvm machine ${rt.machine}: ${e.message}`)))
        )
        const memoryMib = MiB(plan.resources.memory)
        yield* Effect.uninterruptible(smolvm.create({
          name: rt.machine,
          from: spec.image,
          env,
          labels: { ...names(plan.slug).labels("agent"), [LABEL_ALLOW_CIDR]: endpoint.allowCidr },
          allowCidrs: [endpoint.allowCidr],
          dns: endpoint.address,
          ...(plan.resources.cpus !== undefined ? { cpus: plan.resources.cpus } : {}),
          ...(memoryMib !== undefined ? { memoryMib } : {})
        }).pipe(Effect.tap(() => Effect.sync(() => (created = true))), Effect.mapError(fromSmolvm)))
        yield* smolvm.start(rt.machine).pipe(Effect.mapError(fromSmolvm))
      }
      // Provisioning files are new at every start (the CA, the gate's address may have moved).
      yield* copyDirIn(rt.machine, spec.provisionDir, spec.provisionTarget)
      // The workspace starts as a copy of its seed (copy_cwd), once: a kept machine has its own.
      // Whether it was seeded is the host's record (the agent cannot write it): a first launch
      // killed before the copy finished leaves a kept machine that still needs it.
      const seed = spec.workspace?.seed
      const seeded = kept !== undefined && Option.isSome(yield* state.readJsonIfAny(plan.slug, SEEDED_FILE, SeededRecord).pipe(Effect.mapError((e) => failed(e.message))))
      if (seed !== undefined && !seeded) {
        // Into a kept machine, nothing already there is replaced: whatever is there is the agent's.
        yield* copyDirIn(rt.machine, seed, plan.workdir, { keepExisting: kept !== undefined })
        yield* state.writeJson(plan.slug, SEEDED_FILE, { machine: rt.machine, seed }).pipe(Effect.mapError((e) => failed(e.message)))
      }
      const prov = yield* smolvm.exec(rt.machine, spec.provision, { env }).pipe(Effect.mapError(fromSmolvm))
      if (prov.exitCode !== 0) return yield* failed(`provisioning the agent: ${prov.stderr.trim() || `exit ${prov.exitCode}`}`)
    }),
    probe,
    exec: Effect.fnUntraced(function*(plan, argv, options) {
      const rt = yield* smolRuntime(plan)
      const endpoint = yield* endpointNow(plan)
      const r = yield* smolvm.exec(rt.machine, asUser(options.user, argv), {
        env: machineEnv(plan, endpoint),
        workdir: plan.workdir,
        ...(options.stdin !== undefined ? { stdin: options.stdin } : {})
      }).pipe(Effect.mapError(fromSmolvm))
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode }
    }),
    session: Effect.fnUntraced(function*(plan, argv) {
      const rt = yield* smolRuntime(plan)
      const endpoint = yield* endpointNow(plan)
      // smolvm's exec has no detach keys: a session ends when its command does.
      const exitCode = yield* smolvm.execInteractive(rt.machine, asUser("agent", argv), {
        env: machineEnv(plan, endpoint),
        workdir: plan.workdir,
        tty: process.stdin.isTTY === true && process.stdout.isTTY === true
      }).pipe(Effect.mapError(fromSmolvm))
      return { _tag: "Exited" as const, exitCode }
    }),
    copyOut: Effect.fnUntraced(function*(plan, sandboxPath, hostPath) {
      const rt = yield* smolRuntime(plan)
      if (fs.existsSync(hostPath)) return yield* failed(`${hostPath} already exists`)
      yield* smolvm.copyFrom(rt.machine, sandboxPath, hostPath).pipe(Effect.mapError(fromSmolvm))
    }),
    copyIn: Effect.fnUntraced(function*(plan, hostPath, sandboxPath) {
      const rt = yield* smolRuntime(plan)
      const isDir = yield* Effect.try({ try: () => fs.statSync(hostPath).isDirectory(), catch: (e) => failed(`${hostPath}: ${(e as Error).message}`) })
      if (isDir) yield* copyDirIn(rt.machine, hostPath, sandboxPath)
      else yield* smolvm.copyTo(rt.machine, hostPath, sandboxPath).pipe(Effect.mapError(fromSmolvm))
      const own = yield* smolvm.exec(rt.machine, ["chown", "-R", "node:node", sandboxPath], { env: {} }).pipe(Effect.mapError(fromSmolvm))
      if (own.exitCode !== 0) return yield* failed(`chown ${sandboxPath}: ${own.stderr.trim() || `exit ${own.exitCode}`}`)
    }),
    attach: Effect.fnUntraced(function*(plan, argv, options) {
      const rt = yield* smolRuntime(plan)
      const endpoint = yield* endpointNow(plan)
      return yield* smolvm.execInteractive(rt.machine, asUser(options.user, argv), {
        env: machineEnv(plan, endpoint),
        workdir: plan.workdir,
        tty: process.stdin.isTTY === true && process.stdout.isTTY === true
      }).pipe(Effect.mapError(fromSmolvm))
    }),
    inspect,
    keepsAddress,
    logs: Effect.fnUntraced(function*(slug, options) {
      const name = names(slug).bundle
      yield* docker.containerState(name)
      yield* docker.logs(name, { follow: options.follow, ...(options.onLine ? { onLine: options.onLine } : {}) })
    }, Effect.mapError(fromDocker)),
    remove: Effect.fnUntraced(function*(slug, options) {
      const leftovers: Array<string> = []
      let holdsAddress = false
      for (const m of (yield* smolvm.list.pipe(Effect.mapError(fromSmolvm))).filter(isMachineOf(slug))) {
        if (options.volumes) {
          yield* smolvm.remove(m.name).pipe(Effect.catch((e) => Effect.sync(() => {
            leftovers.push(`machine ${m.name}: ${e.message}`)
            holdsAddress = true
          })))
        } else {
          // Stopped, kept: its disks are the bottle's workspace and home, and it stays bound to
          // the bottle's address, so the leases stay too.
          holdsAddress = true
          yield* smolvm.stop(m.name).pipe(Effect.catch((e) => Effect.sync(() => leftovers.push(`machine ${m.name}: ${e.message}`))))
        }
      }
      yield* loopback.release(slug).pipe(Effect.catch((e) => Effect.sync(() => leftovers.push(`loopback alias ${e.address}: ${e.message}`))))
      const mine = (yield* docker.listLabelled(slug).pipe(Effect.mapError(fromDocker))).filter((r) => r.root === rootId && (options.volumes || r.kind !== "volume"))
      const order = { container: 0, network: 1, volume: 2 } as const
      for (const r of [...mine].sort((a, b) => order[a.kind] - order[b.kind])) {
        const rm = r.kind === "container" ? docker.removeContainer(r.name) : r.kind === "network" ? docker.removeNetwork(r.name) : docker.removeVolume(r.name)
        yield* rm.pipe(Effect.catch((e) =>
          Effect.sync(() => {
            leftovers.push(`${r.kind} ${r.name}: ${e.message}`)
            if (r.kind !== "volume") holdsAddress = true
          })
        ))
      }
      return { leftovers, holdsAddress }
    }),
    removeOrphans: Effect.fnUntraced(function*(known, options) {
      // The bundle's container and network carry the same labels as the docker backend's, and
      // the docker backend's cleanup removes them; the machines are this backend's alone.
      const machines = yield* smolvm.list.pipe(Effect.catch(() => Effect.succeed([])))
      const removed: Array<string> = []
      // A pipeline whose process died (kill -9, a crash) left its registry, pusher and network:
      // its session starts with that process's pid.
      const dead = (session: string) => {
        const pid = Number(session.replace(/^bottle-reg-/, "").split("-")[0])
        if (!Number.isInteger(pid) || pid <= 0) return false
        try {
          process.kill(pid, 0)
          return false
        } catch (e) {
          return (e as NodeJS.ErrnoException).code === "ESRCH"
        }
      }
      const pipelineObjects = (kind: "container" | "network") =>
        runner.run(kind === "container"
          ? [DOCKER, "ps", "-a", "--filter", `label=${PIPELINE_LABEL}`, "--format", `{{.Names}}\t{{.Label "${PIPELINE_LABEL}"}}`]
          : [DOCKER, "network", "ls", "--filter", `label=${PIPELINE_LABEL}`, "--format", `{{.Name}}\t{{.Label "${PIPELINE_LABEL}"}}`]).pipe(
          Effect.map((r) => r.stdout.split("\n").filter(Boolean).map((l) => l.split("\t") as [string, string]).filter(([, session]) => dead(session ?? ""))),
          Effect.orElseSucceed(() => [] as Array<[string, string]>)
        )
      for (const kind of ["container", "network"] as const) {
        for (const [name] of yield* pipelineObjects(kind)) {
          if (!options.dryRun) yield* (kind === "container" ? docker.removeContainer(name) : docker.removeNetwork(name)).pipe(Effect.mapError(fromDocker))
          removed.push(`pipeline ${kind} ${name}`)
        }
      }
      for (const m of machines.filter((m) => m.labels?.[LABEL_ROOT] === rootId && !known.has(m.labels?.[LABEL_SLUG] ?? ""))) {
        if (!options.dryRun) yield* smolvm.remove(m.name).pipe(Effect.mapError(fromSmolvm))
        removed.push(`machine ${m.name}`)
      }
      return removed
    })
  })
})

export const layerWith = Layer.effect(Backend, make)
export const layer = layerWith.pipe(
  Layer.provide(Layer.mergeAll(
    RegistryLive.layer.pipe(Layer.provide(Layer.mergeAll(DockerLive.layer, ProcessRunnerLive.layer))),
    SmolvmLive.layer.pipe(Layer.provide(ProcessRunnerLive.layer)),
    LoopbackAliasLive.layer,
    CacheLive.layer,
    DockerLive.layer,
    ProcessRunnerLive.layer,
    StateStoreLive.layer
  ))
)

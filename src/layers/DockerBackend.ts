/**
 * The docker backend: the `Backend` service on a Docker engine (DESIGN.md, Backends).
 *
 * A bottle is a per-bottle `--internal` network (agent + bundle, no host-side address) and a
 * per-bottle egress network (bundle only), the bundle container (fixed address on the internal
 * network) and the agent container (internal network only, no capabilities beyond what
 * provisioning needs, no IPv6, DNS pointed at the bundle). Everything is named
 * `bottle-<slug>-<state root id>-…` and labelled with the slug and the state root's id
 * (src/programs/bottleNames.ts), so `inspect`, `remove` and `removeOrphans` work from the
 * engine alone, and only ever on this root's objects: the engine is shared by every state root
 * on the host (other users, CI jobs, another BOTTLE_STATE_DIR).
 *
 * The internal network's subnet holds against the engine, not only this root's lease table:
 * `addressesInUse` is every subnet any network on the engine has (anyone's), which the lease
 * skips, and a create the engine refuses as overlapping (taken since) is AddressTaken, which
 * launch answers with the next free subnet.
 *
 * Guarantees: every scoped acquisition is released (and a release logs, never fails); secrets
 * reach the bundle through docker's own environment, never its command line; the agent
 * container gets no secret; the bundle joins the egress network only once it runs; the
 * bundle's log is saved in the bottle's state dir (SAVED_BUNDLE_LOG) before the bundle is
 * removed, by a launch's release or by `remove`.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Exit, Fiber, Layer } from "effect"
import { probeArgv, probeTargets, probeVerdict } from "../programs/isolationProbe.ts"
import { agentImageSource, baseImageIds, bundleImageSource, ensureImage } from "../programs/images.ts"
import { AGENT_HOME } from "../providers/claude.ts"
import { subnetFor } from "../schema/Bundle.ts"
import { BUNDLE_LOG_PREFIX, type BundleRunSpec, bundleRunSpec, READY_LINE, UNHEALTHY_LINE } from "../schema/BundleProtocol.ts"
import type { BottlePlan } from "../schema/BottlePlan.ts"
import {
  Backend,
  BackendAddressTaken,
  BackendError,
  BackendFailed,
  BackendNotFound,
  BackendUnavailable,
  type BottleNetwork,
  type BottleState,
  type BottleStatus,
  type BundleSpec,
  type SandboxSpec,
  type SandboxUser,
  SAVED_BUNDLE_LOG
} from "../services/Backend.ts"
import { type ContainerSpec, Docker, DockerError, type LabelledResource } from "../services/Docker.ts"
import { Progress, reportStep } from "../services/Progress.ts"
import { StateStore } from "../services/StateStore.ts"
import { type BottleNames, type BottleRole, namesIn, stateRootId } from "../programs/bottleNames.ts"
import * as DockerLive from "./Docker.ts"
import * as StateStoreLive from "./StateStore.ts"

const toBackendError = (e: DockerError): BackendError =>
  new BackendError({
    backend: "docker",
    reason: e.reason._tag === "SubnetOverlap"
      ? new BackendAddressTaken({ subnet: e.reason.subnet, message: e.message })
      : e.reason._tag === "Unavailable"
      ? new BackendUnavailable({ message: e.message })
      : e.reason._tag === "NotFound"
      ? new BackendNotFound({ what: e.reason.what })
      : new BackendFailed({ message: e.message })
  })
const failed = (message: string) => new BackendError({ backend: "docker", reason: new BackendFailed({ message }) })

/** The docker part of a plan; a plan for another backend here is a bug in the backend table. */
const dockerRuntime = (plan: BottlePlan) =>
  plan.runtime.backend === "docker"
    ? Effect.succeed(plan.runtime)
    : Effect.die(new Error(`the docker backend was given a ${plan.runtime.backend} plan`))

/**
 * The bundle container: what it is told (daemons, where their state is), what it mounts, the
 * route tokens it injects. Kept together: this is the bundle protocol as docker speaks it.
 */
export const bundleContainer = (names: BottleNames, plan: BottlePlan, internalNetwork: string, spec: BundleSpec, run: BundleRunSpec = bundleRunSpec(plan, spec.stateDir, (sub, file) => fs.existsSync(path.join(spec.stateDir, sub, file)))): ContainerSpec => ({
  name: names.bundle,
  image: spec.image,
  // The egress network is joined once the bundle runs: it is only needed once the agent makes
  // a request, and the bundle then briefly has fewer routes, never more.
  networks: [{ name: internalNetwork, ip: plan.network.bundleIp }],
  // Each daemon's variables, and its own subdir of the state dir mounted (bundle protocol).
  env: run.env,
  secretEnv: spec.secretEnv,
  labels: names.labels("bundle"),
  // The bundle runs as the host user who owns the state dir (0700), so it can read its config
  // and CA key without the dir being opened to anyone else.
  ...(process.getuid && process.getgid ? { user: `${process.getuid()}:${process.getgid()}` } : {}),
  mounts: run.mounts,
  extraArgs: ["--cap-drop", "ALL", "--security-opt", "no-new-privileges", ...BUNDLE_LIMITS]
})

/**
 * What the agent can take of the host, whatever the manifest says: a fork bomb stops at the
 * agent's process limit instead of exhausting the host and every other bottle. (Memory and
 * CPUs for the agent are the manifest's `resources`; the engine's default is none.)
 */
export const AGENT_PIDS_LIMIT = 4096
/**
 * The bundle's own bounds: its daemons are small (egress sheds load past its 64 MB heap, peak
 * RSS ~150 MB), so a runaway is cut off here instead of taking the host with it.
 */
export const BUNDLE_LIMITS: ReadonlyArray<string> = ["--pids-limit", "256", "--memory", "512m"]

/** The agent container's isolation flags, beside the internal network it is alone on with the bundle. */
const agentIsolation = (plan: BottlePlan) => [
  "--init",
  // The engine's DNS would forward lookups of outside names for the agent (on engines before
  // 26.0.0 even through the host's namespace, CVE-2024-29018: a DNS exfiltration channel).
  // Pointed at the sidecar, where nothing answers on port 53, they go nowhere; names on the
  // bottle's own network still resolve.
  "--dns", plan.network.bundleIp,
  // No IPv6 at all: --internal and inhibit_ipv4 close IPv4 only, and link-local IPv6 could
  // otherwise reach host services listening on ::.
  "--sysctl", "net.ipv6.conf.all.disable_ipv6=1",
  "--sysctl", "net.ipv6.conf.default.disable_ipv6=1",
  "--cap-drop", "ALL",
  "--cap-add", "CHOWN", "--cap-add", "DAC_OVERRIDE", "--cap-add", "FOWNER", "--cap-add", "SETUID", "--cap-add", "SETGID",
  "--security-opt", "no-new-privileges",
  "--pids-limit", String(AGENT_PIDS_LIMIT)
]

const isLink = (p: string) => {
  try {
    return fs.lstatSync(p).isSymbolicLink()
  } catch {
    return false
  }
}

const userOf = (user: SandboxUser) => (user === "root" ? "root" : "node")

const statusOf = (names: BottleNames, slug: string, resources: ReadonlyArray<LabelledResource>): BottleStatus => {
  const mine = resources.filter((r) => r.slug === slug && r.kind === "container")
  if (mine.length === 0) return "stopped"
  const running = (name: string) => mine.some((r) => r.name === name && r.state === "running")
  if (!running(names.agent) || !running(names.bundle)) return "degraded"
  return mine.some((r) => r.name === names.bundle && r.health === "unhealthy") ? "unhealthy" : "running"
}

/**
 * The overlay's lower dir, if the cwd can be one: its real path goes into a mount option string,
 * where `,` separates options, `:` lower layers and `\\` escapes; such a cwd is copied instead.
 */
const overlayLower = (dir: string): string | undefined => {
  try {
    const real = fs.realpathSync(dir)
    return /[,:\\\s=]/.test(real) ? undefined : real
  } catch {
    return undefined
  }
}
const overlayOptions = (lower: string, upper: string, scratch: string): Record<string, string> => ({
  type: "overlay",
  device: "overlay",
  o: `lowerdir=${lower},upperdir=${upper},workdir=${scratch},metacopy=on`
})
/** The engine's words when a container's volume cannot be mounted. */
const OVERLAY_REFUSED = /error while mounting volume|failed to mount local volume/i

/** Containers before networks before volumes: a network in use cannot be removed. */
const removalOrder = { container: 0, network: 1, volume: 2 } as const
const inRemovalOrder = (rs: ReadonlyArray<LabelledResource>) => [...rs].sort((a, b) => removalOrder[a.kind] - removalOrder[b.kind])

export const make = Effect.gen(function*() {
  const docker = yield* Docker
  const root = (yield* StateStore).root
  // The root's id is a realpath walk and a hash: once per layer, not per engine call.
  const rootId = stateRootId(root)
  const names = (slug: string) => namesIn(rootId, slug)
  /** This root's objects. Unlabelled ones (made before roots were labelled) are no root's. */
  const ofRoot = (rs: ReadonlyArray<LabelledResource>) => rs.filter((r) => r.root === rootId)
  const removeResource = (r: LabelledResource) =>
    r.kind === "container" ? docker.removeContainer(r.name) : r.kind === "network" ? docker.removeNetwork(r.name) : docker.removeVolume(r.name)

  const state = yield* StateStore
  const SAVED_LOG_LINES = 20_000
  /**
   * Saves the bundle's log in the bottle's state dir before the bundle goes (SAVED_BUNDLE_LOG):
   * only into a state dir that exists, by rename from a temp file (a file planted under that
   * name is replaced, never followed). Never fails: a log that cannot be saved is said once.
   */
  const saveBundleLog = (slug: string) =>
    // The last lines only: a long-lived sidecar's log is bounded on disk and in memory.
    docker.logsText(names(slug).bundle, { tail: SAVED_LOG_LINES }).pipe(
      Effect.flatMap((text) =>
        Effect.try(() => {
          const dir = state.bottleDir(slug)
          if (!fs.existsSync(dir)) return
          const tmp = path.join(dir, `.${SAVED_BUNDLE_LOG}.${process.pid}.tmp`)
          fs.rmSync(tmp, { force: true })
          fs.writeFileSync(tmp, text, { mode: 0o600, flag: "wx" })
          fs.renameSync(tmp, path.join(dir, SAVED_BUNDLE_LOG))
        })
      ),
      Effect.catch((e) => Effect.sync(() => process.stderr.write(`bottle: could not save ${slug}'s sidecar log: ${e.message}\n`)))
    )

  /** Follows the bundle's log to its readiness line; an unhealthy line or its exit fails. */
  const waitForBundle = Effect.fnUntraced(function*(name: string, timeoutMs: number) {
    const line = yield* docker.waitForLogLine(name, (l) => l.startsWith(READY_LINE) || l.startsWith(UNHEALTHY_LINE)).pipe(
      Effect.mapError(toBackendError),
      Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.fail(failed(`the sidecar bundle did not become ready in ${timeoutMs} ms`)) })
    )
    if (line === undefined) return yield* failed(`the sidecar bundle exited; see \`docker logs ${name}\``)
    if (line.startsWith(UNHEALTHY_LINE)) return yield* failed(`the sidecar bundle is ${line.slice(BUNDLE_LOG_PREFIX.length)}`)
  })

  const network = Effect.fnUntraced(function*(plan: BottlePlan) {
    const rt = yield* dockerRuntime(plan)
    yield* docker.network({
      name: rt.internalNetwork,
      internal: true,
      subnet: plan.network.subnet,
      ipRange: subnetFor(plan.network.subnetIndex).ipRange,
      labels: names(plan.slug).labels("internal")
    })
    // The egress network is created once the internal one exists, not beside it (the engine
    // does much of network creation one at a time, and the containers wait for the internal
    // one only); only the bundle waits for it, once it runs.
    const egress = yield* Effect.forkScoped(docker.network({ name: rt.egressNetwork, internal: false, labels: names(plan.slug).labels("egress") }))
    return { complete: Fiber.join(egress).pipe(Effect.asVoid, Effect.mapError(toBackendError)) } satisfies BottleNetwork
  }, Effect.mapError(toBackendError))

  const bundle = Effect.fnUntraced(function*(plan: BottlePlan, net: BottleNetwork, spec: BundleSpec) {
    const rt = yield* dockerRuntime(plan)
    const container = yield* docker.container(bundleContainer(names(plan.slug), plan, rt.internalNetwork, spec)).pipe(Effect.mapError(toBackendError))
    // Released before the container (finalizers run last-in first-out): its log is kept.
    yield* Effect.addFinalizer(() => saveBundleLog(plan.slug))
    yield* reportStep("bundle:ready")
    yield* Effect.all([
      net.complete.pipe(Effect.andThen(docker.connectNetwork(container.name, { name: rt.egressNetwork }).pipe(Effect.mapError(toBackendError)))),
      waitForBundle(container.name, spec.readyTimeoutMs)
    ], { concurrency: 2, discard: true })
  })

  /**
   * The bottle's kept state (docs/lifecycle.md): the agent's home, and (unless mount_cwd) its
   * workspace, on volumes named and labelled for the bottle. Made on the bottle's first launch
   * and found again by name on a resume. A workspace seeded from the cwd is an overlay volume:
   * the cwd, read-only, as its lower layer (the engine mounts it; nothing is copied, whatever
   * the size of the cwd), and two volumes of the engine's own for the agent's changes (upper)
   * and the overlay's scratch dir. The changes never reach the host's files, nor any directory
   * of the host user: they live in the engine's volume store. `metacopy=on` makes the ownership
   * fix-up a metadata copy-up (no file data is copied). Scoped: volumes made here are removed
   * again if the launch fails (a resumed bottle's state is never removed by a failed resume).
   */
  const stateVolumes = (plan: BottlePlan, spec: SandboxSpec) => {
    const n = names(plan.slug)
    const v = n.volumes
    const seed = spec.workspace?.seed
    const create = Effect.fnUntraced(function*() {
      const probe = spec.workspace ? v.workspace : v.home
      const fresh = yield* docker.volumeMountpoint(probe).pipe(Effect.as(false), Effect.catchIf((e) => e.reason._tag === "NotFound", () => Effect.succeed(true)))
      if (!fresh) return { created: [] as ReadonlyArray<string>, workspace: "kept" as const }
      const made: Array<string> = []
      const volume = (name: string, role: BottleRole, options?: Record<string, string>) =>
        docker.createVolume({ name, labels: n.labels(role), ...(options ? { options } : {}) }).pipe(Effect.andThen(Effect.sync(() => made.push(name))))
      const lower = seed === undefined ? undefined : overlayLower(seed)
      const workspace: "empty" | "overlay" | "copy" | "none" = !spec.workspace ? "none" : seed === undefined ? "empty" : lower ? "overlay" : "copy"
      yield* Effect.all([
        volume(v.home, "home"),
        workspace === "overlay" ? Effect.all([volume(v.upper, "workspace-upper"), volume(v.scratch, "workspace-scratch")], { concurrency: 2 }) : Effect.void,
        workspace === "empty" || workspace === "copy" ? volume(v.workspace, "workspace") : Effect.void
      ], { concurrency: 3 }).pipe(Effect.onError(() => removeVolumes(made)))
      if (workspace === "overlay") {
        const [upper, scratch] = yield* Effect.all([docker.volumeMountpoint(v.upper), docker.volumeMountpoint(v.scratch)], { concurrency: 2 }).pipe(Effect.onError(() => removeVolumes(made)))
        yield* volume(v.workspace, "workspace", overlayOptions(lower!, upper, scratch)).pipe(Effect.onError(() => removeVolumes(made)))
      }
      return { created: made as ReadonlyArray<string>, workspace }
    })
    return Effect.acquireRelease(create(), (r, exit) => (Exit.isFailure(exit) && r.created.length > 0 ? removeVolumes(r.created) : Effect.void))
  }
  const removeVolumes = (vs: ReadonlyArray<string>) =>
    Effect.forEach([...vs].reverse(), (name) => docker.removeVolume(name).pipe(Effect.catchCause((c) => Effect.logError(`could not remove volume ${name}`, c))), { discard: true })

  const sandbox = Effect.fnUntraced(function*(plan: BottlePlan, _net: BottleNetwork, spec: SandboxSpec) {
    const rt = yield* dockerRuntime(plan)
    const n = names(plan.slug)
    const kept = yield* stateVolumes(plan, spec)
    const stateMounts = (workspace: boolean) => [
      { source: n.volumes.home, target: AGENT_HOME, readonly: false, volume: true },
      ...(workspace ? [{ source: n.volumes.workspace, target: plan.workdir, readonly: false, volume: true, nocopy: true }] : [])
    ]
    const containerSpec: ContainerSpec = {
      name: n.agent,
      image: spec.image,
      networks: [{ name: rt.internalNetwork }],
      env: { ...plan.env, HOME: AGENT_HOME },
      labels: n.labels("agent"),
      mounts: [{ source: spec.provisionDir, target: spec.provisionTarget, readonly: true }, ...stateMounts(spec.workspace !== undefined), ...spec.mounts],
      workdir: plan.workdir,
      user: "root",
      hostname: plan.slug,
      command: ["sleep", "infinity"],
      ...(plan.resources.cpus !== undefined ? { cpus: plan.resources.cpus } : {}),
      ...(plan.resources.memory !== undefined ? { memory: plan.resources.memory } : {}),
      extraArgs: agentIsolation(plan)
    }
    let copy = kept.workspace === "copy"
    const agent = yield* docker.container(containerSpec).pipe(
      // An engine that cannot mount the overlay (Docker Desktop: the cwd is not a path of its
      // VM; a rootless engine on an old kernel): the workspace becomes a copy, made once.
      Effect.catchIf((e) => kept.workspace === "overlay" && e.reason._tag === "CommandFailed" && OVERLAY_REFUSED.test(e.reason.stderr), (e) =>
        Effect.gen(function*() {
          yield* Effect.logDebug(`overlay workspace refused, copying instead: ${e.message}`)
          yield* docker.removeContainer(n.agent)
          yield* docker.removeVolume(n.volumes.workspace)
          yield* docker.createVolume({ name: n.volumes.workspace, labels: n.labels("workspace") })
          copy = true
          return yield* docker.container(containerSpec)
        })),
      // A kept overlay workspace whose lower layer (the cwd the bottle was started from) is gone:
      // the agent's changes are intact in their volume, and the user is told how to reach them.
      Effect.catchIf((e) => kept.workspace === "kept" && e.reason._tag === "CommandFailed" && OVERLAY_REFUSED.test(e.reason.stderr), (e) => {
        const lower = e.reason._tag === "CommandFailed" ? e.reason.stderr.match(/lowerdir=([^,]+),upperdir=/)?.[1] : undefined
        if (lower === undefined || fs.existsSync(lower)) return Effect.fail<DockerError | BackendError>(e)
        return Effect.fail<DockerError | BackendError>(failed(
          `the workspace of ${plan.slug} is the agent's changes laid over ${lower}, and ${lower} is gone (moved or deleted since the bottle started). ` +
            `The agent's changes are kept (volume ${n.volumes.upper}): put the directory back at ${lower} (the same checkout, or a clone of it) and resume again; ` +
            `an empty directory there will do to reach the files the agent wrote (\`bottle cp ${plan.slug}:<path> <dest>\`; the files it did not touch, and so its git history, need the original). \`bottle stop --purge ${plan.slug}\` discards them.`
        ))
      })
    )
    yield* reportStep("provision")
    if (copy && spec.workspace?.seed !== undefined) yield* docker.copyTo(agent.name, `${spec.workspace.seed}/.`, plan.workdir)
    const prov = yield* docker.exec(agent.name, spec.provision, { user: "root" })
    if (prov.exitCode !== 0) return yield* failed(`provisioning the agent: ${prov.stderr.trim() || `exit ${prov.exitCode}`}`)
  }, Effect.mapError((e) => (e instanceof DockerError ? toBackendError(e) : e)))

  const execOptions = (plan: BottlePlan, user: SandboxUser) => ({ user: userOf(user), workdir: plan.workdir, env: { ...plan.env, HOME: AGENT_HOME } })

  const inspect = (slug?: string) =>
    docker.listLabelled(slug).pipe(
      Effect.map(ofRoot),
      Effect.map((rs) =>
        [...new Set(rs.map((r) => r.slug))].map((s): BottleState => ({
          slug: s,
          status: statusOf(names(s), s, rs),
          parts: rs.filter((r) => r.slug === s && r.kind === "container").map((r) => r.name),
          volumes: rs.filter((r) => r.slug === s && r.kind === "volume").map((r) => r.name)
        }))
      ),
      Effect.mapError(toBackendError)
    )

  return Backend.of({
    name: "docker",
    preflight: Effect.void,
    addressesInUse: docker.networkSubnets.pipe(
      Effect.map((nets) => nets.flatMap((n) => n.subnets)),
      Effect.mapError(toBackendError)
    ),
    images: Effect.fnUntraced(function*(spec) {
      const sources = spec.sources ?? { agent: agentImageSource(), bundle: bundleImageSource() }
      const progress = yield* Progress
      const onProgress = (line: string) => Effect.runSync(progress.report({ _tag: "BuildOutput", line }))
      const baseIds = yield* baseImageIds([sources.agent, sources.bundle])
      const [agent, bundle] = yield* Effect.all([
        ensureImage(sources.agent, { env: spec.env, baseIds, onProgress }),
        ensureImage(sources.bundle, { env: spec.env, baseIds, onProgress })
      ], { concurrency: 2 })
      return { agent: agent.tag, bundle: bundle.tag }
    }, Effect.provideService(Docker, docker), Effect.mapError(toBackendError)),
    network,
    bundle,
    sandbox,
    probe: (plan) =>
      docker.exec(names(plan.slug).agent, probeArgv(probeTargets(plan.network.bundleIp, plan.network.subnet)), execOptions(plan, "agent")).pipe(
        Effect.map((r) => probeVerdict(r.stdout)),
        Effect.mapError(toBackendError)
      ),
    exec: (plan, argv, options) =>
      docker.exec(names(plan.slug).agent, argv, { ...execOptions(plan, options.user), ...(options.stdin !== undefined ? { stdin: options.stdin } : {}) }).pipe(
        Effect.mapError(toBackendError)
      ),
    attach: (plan, argv, options) =>
      docker.execInteractive(names(plan.slug).agent, argv, {
        tty: process.stdin.isTTY === true && process.stdout.isTTY === true,
        ...execOptions(plan, options.user)
      }).pipe(Effect.mapError(toBackendError)),
    session: Effect.fnUntraced(function*(plan, argv) {
      const agent = names(plan.slug).agent
      // The command records its pid (it execs in place of the shell): after docker's client
      // returns, a command still alive means the client was detached (Ctrl-P Ctrl-Q), not that
      // it exited. The agent could fake the record: the worst it gets is a bottle kept running.
      const marker = `/tmp/.bottle-session-${crypto.randomBytes(6).toString("hex")}`
      const code = yield* docker.execInteractive(agent, ["sh", "-c", "echo $$ > \"$0\"; exec \"$@\"", marker, ...argv], {
        tty: process.stdin.isTTY === true && process.stdout.isTTY === true,
        ...execOptions(plan, "agent")
      })
      // Root in the sandbox has no CAP_KILL (kill -0 is refused): the process's /proc entry says.
      const alive = code === 0 ? false : (yield* docker.exec(agent, ["sh", "-c", "p=$(cat \"$0\") && [ -d \"/proc/$p\" ]", marker], { user: "root" }).pipe(Effect.orElseSucceed(() => ({ exitCode: 1 })))).exitCode === 0
      yield* docker.exec(agent, ["rm", "-f", marker], { user: "root" }).pipe(Effect.ignore)
      return alive ? { _tag: "Detached" as const } : { _tag: "Exited" as const, exitCode: code }
    }, Effect.mapError(toBackendError)),
    copyOut: Effect.fnUntraced(function*(plan, sandboxPath, hostPath) {
      if (fs.existsSync(hostPath) || isLink(hostPath)) return yield* failed(`${hostPath} exists: copy to a new path (nothing on the host is overwritten)`)
      yield* docker.copyFrom(names(plan.slug).agent, path.posix.resolve(plan.workdir, sandboxPath), hostPath).pipe(Effect.mapError(toBackendError))
    }),
    copyIn: Effect.fnUntraced(function*(plan, hostPath, sandboxPath) {
      const agent = names(plan.slug).agent
      const dest = path.posix.resolve(plan.workdir, sandboxPath)
      // docker cp puts a source into a destination dir that exists, else at the destination.
      const isDir = (yield* docker.exec(agent, ["test", "-d", dest], { user: "root" }).pipe(Effect.mapError(toBackendError))).exitCode === 0
      const target = isDir ? path.posix.join(dest, path.basename(path.resolve(hostPath))) : dest
      yield* docker.copyTo(agent, hostPath, dest).pipe(Effect.mapError(toBackendError))
      // docker cp gives root (or the host uid) the files: the agent's user owns what it is given.
      const own = yield* docker.exec(agent, ["chown", "-R", "-h", "node:node", "--", target], { user: "root" }).pipe(Effect.mapError(toBackendError))
      if (own.exitCode !== 0) return yield* failed(`copied, but could not give ${target} to the agent's user: ${own.stderr.trim()}`)
    }),
    inspect,
    ...(docker.events ? { changes: (onChange: () => void) => docker.events!(rootId, onChange).pipe(Effect.mapError(toBackendError)) } : {}),
    logs: Effect.fnUntraced(function*(slug, options) {
      const name = names(slug).bundle
      yield* docker.containerState(name)
      yield* docker.logs(name, { follow: options.follow, ...(options.onLine ? { onLine: options.onLine } : {}) })
    }, Effect.mapError(toBackendError)),
    remove: Effect.fnUntraced(function*(slug, options) {
      const leftovers: Array<string> = []
      let holdsAddress = false
      // This root's objects of the slug, and unlabelled ones a version before root labels left
      // (their names collided across roots then, so at most one root can have them).
      // Volumes are the bottle's kept state: removed only when asked (purge).
      const mine = (yield* docker.listLabelled(slug)).filter((r) => (r.root === rootId || r.root === undefined) && (options.volumes || r.kind !== "volume"))
      if (mine.some((r) => r.kind === "container" && r.name === names(slug).bundle)) yield* saveBundleLog(slug)
      for (const r of inRemovalOrder(mine)) {
        yield* removeResource(r).pipe(Effect.catch((e) =>
          Effect.sync(() => {
            leftovers.push(`${r.kind} ${r.name}: ${e.message}`)
            // A network (or a container holding one) keeps the bottle's subnet.
            if (r.kind !== "volume") holdsAddress = true
          })
        ))
      }
      return { leftovers, holdsAddress }
    }, Effect.mapError(toBackendError)),
    removeOrphans: Effect.fnUntraced(function*(known, options) {
      const removed: Array<string> = []
      for (const r of inRemovalOrder(ofRoot(yield* docker.listLabelled()).filter((r) => !known.has(r.slug)))) {
        if (!options.dryRun) yield* removeResource(r)
        removed.push(`${r.kind} ${r.name}`)
      }
      return removed
    }, Effect.mapError(toBackendError))
  })
})

/** On a given Docker service and state root (tests give a fake engine and a temporary root). */
export const layerWith = Layer.effect(Backend, make)
export const layer = layerWith.pipe(Layer.provide(Layer.mergeAll(DockerLive.layer, StateStoreLive.layer)))

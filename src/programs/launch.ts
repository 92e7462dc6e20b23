/**
 * launch: the side effects, as one scoped program. Every acquisition is a resource whose
 * release is guaranteed, in reverse order, on success, failure or interruption:
 *
 *   state dir → subnet lease + internal network → bottle CA → deploy keys → { images ‖
 *   egress network } → { bundle (until ready) ‖ agent (provisioned) } → attach
 *
 * (‖: side by side; neither needs the other.)
 *
 * Deploy-key revocation runs even when other releases fail, and a revocation failure is an
 * error the operator sees, beside whatever failed before it. Each key is recorded in the
 * state dir (meta.json) the moment it exists and stays recorded until it is revoked, so even
 * a launch killed outright leaves `bottle stop` what to revoke. In detach mode a successful
 * launch keeps everything running; its teardown is `bottle stop`, which works from the state
 * dir and the slug label.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Cause, Effect, Exit, Fiber, Option, Redacted, Ref, Schema, Scope } from "effect"
import * as YAML from "yaml"
import { ensureBottleCa } from "../../bundle/egress/ca.ts"
import { READY_LINE, UNHEALTHY_LINE } from "../../bundle/init.ts"
import { AGENT_HOME, SKILLS_DIR } from "../providers/claude.ts"
import { BUNDLE_EGRESS_DIR, EGRESS_PORT, subnetFor } from "../schema/Bundle.ts"
import { BottleMeta, type BottlePlan } from "../schema/BottlePlan.ts"
import type { Backend } from "../schema/Manifest.ts"
import { Docker } from "../services/Docker.ts"
import { GitHost, type DeployKeyRef, type GitHostError } from "../services/GitHost.ts"
import { StateStore } from "../services/StateStore.ts"
import { bottleNames } from "./bottleNames.ts"
import { leaseSubnetAndNetwork } from "./subnetLease.ts"
import { agentImageSource, baseImageIds, bundleImageSource, ensureImage, type ImageSource } from "./images.ts"

export class LaunchFailed extends Schema.TaggedClass<LaunchFailed>()("LaunchFailed", { step: Schema.String, message: Schema.String }) {}
export class RevocationFailed extends Schema.TaggedClass<RevocationFailed>()("RevocationFailed", {
  keys: Schema.Array(Schema.Struct({ repo: Schema.String, id: Schema.Number, message: Schema.String })),
  /** What had already failed when the keys were being revoked (the launch itself): one line names both. */
  alsoFailed: Schema.optionalKey(Schema.String)
}) {}
export class BackendNotBuilt extends Schema.TaggedClass<BackendNotBuilt>()("BackendNotBuilt", { backend: Schema.String }) {}
export class MissingToken extends Schema.TaggedClass<MissingToken>()("MissingToken", { env: Schema.String, purpose: Schema.String }) {}

export class LaunchError extends Schema.TaggedError<LaunchError>()("LaunchError", {
  reason: Schema.Union([LaunchFailed, RevocationFailed, BackendNotBuilt, MissingToken])
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "LaunchFailed":
        return `launch failed at ${r.step}: ${r.message}`
      case "RevocationFailed":
        return `DEPLOY KEY REVOCATION FAILED — revoke by hand now: ${r.keys.map((k) => `${k.repo} key ${k.id} (${k.message})`).join("; ")}${r.alsoFailed ? ` — and before that: ${r.alsoFailed}` : ""}`
      case "BackendNotBuilt":
        return `the ${r.backend} backend is not built yet in this version of bot-bottle; use --backend docker`
      case "MissingToken":
        return `$${r.env} is not set on the host (needed for ${r.purpose}); export it and try again`
    }
  }
}

/** Backends this version can launch; the others are planned (and shown) but refused before anything starts. */
export const BUILT_BACKENDS: ReadonlyArray<Backend> = ["docker"]
export const backendNotBuilt = (backend: Backend): LaunchError | undefined =>
  BUILT_BACKENDS.includes(backend) ? undefined : new LaunchError({ reason: new BackendNotBuilt({ backend }) })

export const AGENT_PROVISION_DIR = "/run/bottle/agent"

export interface LaunchOptions {
  readonly mode: "attach" | "detach"
  /** A first launch creates the state dir (and removes it if the launch fails). */
  readonly fresh: boolean
  readonly env: Record<string, string | undefined>
  readonly onStep?: (step: string) => void
  readonly onBuildProgress?: (line: string) => void
  /** How long to wait for the bundle to report ready. */
  readonly readyTimeoutMs?: number
  /** Image build contexts (default: the package's agent-image/ and bundle/). */
  readonly images?: { readonly agent: ImageSource; readonly bundle: ImageSource }
}

export interface LaunchedBottle {
  readonly slug: string
  readonly agentContainer: string
  readonly bundleContainer: string
  readonly exitCode?: number
}

/** The plan with the subnet actually leased (it may differ from the one shown if another bottle took it since). */
const withSubnet = (plan: BottlePlan, index: number): BottlePlan => {
  const { subnet, bundleIp } = subnetFor(index)
  if (index === plan.network.subnetIndex) return plan
  const proxy = `http://${bundleIp}:${EGRESS_PORT}`
  const env = { ...plan.env }
  for (const k of ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"]) if (k in env) env[k] = proxy
  return { ...plan, env, network: { ...plan.network, subnetIndex: index, subnet, bundleIp } }
}

/**
 * Shell run as root in the agent once: trust the bottle CA, place prompt and skills, own the
 * home (and a copied workspace). Paths come in as positional parameters, never spliced into
 * the script, so no manifest value can become shell syntax.
 */
const PROVISION_SCRIPT = `set -eu
provision="$1"; home="$2"; workdir="$3"; prompt="$4"; skills="$5"; own_workdir="$6"
install -m 0644 "$provision/ca.pem" /usr/local/share/ca-certificates/bot-bottle.crt
# Appending is what update-ca-certificates would do for one new CA, without rehashing them all.
cat "$provision/ca.pem" >> /etc/ssl/certs/ca-certificates.crt
mkdir -p "$home/.bottle" "$workdir"
install -m 0600 "$provision/prompt.md" "$prompt"
if [ -d "$provision/skills" ]; then mkdir -p "$skills" && cp -a "$provision/skills/." "$skills/"; fi
chown -R node:node "$home"
if [ "$own_workdir" = yes ]; then chown -R node:node "$workdir"; fi
chmod 1777 /tmp
`
const provisionArgv = (plan: BottlePlan, skillsDir: string) =>
  // A mounted workspace holds the user's own files, owned as they are on the host: never chowned.
  ["sh", "-c", PROVISION_SCRIPT, "provision", AGENT_PROVISION_DIR, AGENT_HOME, plan.workdir, plan.promptPath, skillsDir, plan.mountCwd ? "no" : "yes"]

/** Where an upstream's deploy-key private half lives, relative to the bottle's state dir (0600). */
export const deployKeyFile = (upstream: string) => `git-gate/keys/${upstream}`

const GITHUB_API = "https://api.github.com"

/**
 * A fresh ed25519 key pair for one deploy key: the public half as an OpenSSH line (what the
 * git host registers), the private half in OpenSSH's own file format (what ssh reads; PKCS#8
 * ed25519 is not readable by every OpenSSH). One pair per upstream per launch: never reused.
 */
export const deployKeyPair = (comment: string): { readonly publicKey: string; readonly privateKey: string } => {
  const { publicKey, privateKey } = crypto.generateKeyPairSync("ed25519")
  const pub = Buffer.from(publicKey.export({ format: "jwk" }).x ?? "", "base64url")
  const seed = Buffer.from(privateKey.export({ format: "jwk" }).d ?? "", "base64url")
  const u32 = (n: number) => {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(n)
    return b
  }
  const str = (v: string | Buffer) => {
    const b = typeof v === "string" ? Buffer.from(v) : v
    return Buffer.concat([u32(b.length), b])
  }
  const pubBlob = Buffer.concat([str("ssh-ed25519"), str(pub)])
  const check = crypto.randomBytes(4)
  const secret = Buffer.concat([check, check, str("ssh-ed25519"), str(pub), str(Buffer.concat([seed, pub])), str(comment)])
  // Padded with 1, 2, 3, ... to the cipher block size (8 for "none").
  const padded = Buffer.concat([secret, Buffer.from(Array.from({ length: (8 - (secret.length % 8)) % 8 }, (_, i) => i + 1))])
  const body = Buffer.concat([Buffer.from("openssh-key-v1\0"), str("none"), str("none"), str(""), u32(1), str(pubBlob), str(padded)])
  return {
    publicKey: `ssh-ed25519 ${pubBlob.toString("base64")} ${comment}`,
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${body.toString("base64").replace(/.{70}/g, "$&\n").trimEnd()}\n-----END OPENSSH PRIVATE KEY-----\n`
  }
}

type RecordedKey = BottleMeta["deployKeys"][number]
type RevocationFailure = { readonly key: RecordedKey; readonly message: string }

/**
 * Acquires everything a docker bottle needs, in dependency order. Each acquisition is scoped;
 * `revocationFailures` collects deploy keys whose revocation failed during release.
 */
export const acquireDockerBottle = Effect.fnUntraced(function*(
  initialPlan: BottlePlan,
  options: LaunchOptions,
  revocationFailures: Ref.Ref<ReadonlyArray<RevocationFailure>>
) {
  const docker = yield* Docker
  const state = yield* StateStore
  const gitHost = yield* GitHost
  const step = (s: string) => Effect.sync(() => options.onStep?.(s))
  const slug = initialPlan.slug
  const names = bottleNames(state.root, slug)

  // Everything that can be checked before acquiring anything.
  for (const t of initialPlan.egress.tokens) {
    if (!options.env[t.env]) return yield* new LaunchError({ reason: new MissingToken({ env: t.env, purpose: "an egress route or deploy key" }) })
  }

  yield* step("state")
  if (options.fresh) yield* state.createBottleDir(slug)
  // The subnet and the internal network on it, together: the engine holds the lease too.
  const { lease } = yield* leaseSubnetAndNetwork(slug, (s) => ({
    name: initialPlan.network.internal, internal: true, subnet: s.subnet, ipRange: s.ipRange, labels: names.labels("internal")
  }))
  const plan = withSubnet(initialPlan, lease.index)
  const dir = state.bottleDir(slug)
  const egressDir = path.join(dir, "egress")
  const agentDir = path.join(dir, "agent")
  yield* state.writeJson(slug, "plan.json", plan)
  // A resumed bottle keeps the routes it had (including `bottle egress allow|deny` changes).
  const routesFile = path.join(egressDir, "routes.yaml")
  if (options.fresh || !fs.existsSync(routesFile)) {
    yield* state.writeFile(slug, "egress/routes.yaml", YAML.stringify({ routes: plan.egress.routes }))
  }
  yield* state.writeFile(slug, "agent/prompt.md", plan.prompt)
  const extraEgressCa = options.env["BOTTLE_EGRESS_EXTRA_CA_CERTS"]
  if (extraEgressCa) {
    yield* state.writeFile(slug, "egress/extra-ca.pem", yield* Effect.try({
      try: () => fs.readFileSync(extraEgressCa, "utf8"),
      catch: (e) => new LaunchError({ reason: new LaunchFailed({ step: "state", message: `BOTTLE_EGRESS_EXTRA_CA_CERTS: ${(e as Error).message}` }) })
    }), 0o644)
  }
  // Minted (or reused) side by side with the image checks and networks below (minting loads the
  // X.509 library then, so the CLI's start-up never pays for it).
  const bottleCa = ensureBottleCa(egressDir).pipe(
    Effect.mapError((e) => new LaunchError({ reason: new LaunchFailed({ step: "ca", message: e.message }) })),
    // The agent gets the CA certificate only; the key stays in the bundle's mount.
    Effect.flatMap((ca) => state.writeFile(slug, "agent/ca.pem", ca.certPem, 0o644))
  )
  yield* Effect.try({
    try: () => {
      for (const s of plan.skills) fs.cpSync(s.source, path.join(agentDir, "skills", s.name), { recursive: true })
    },
    catch: (e) => new LaunchError({ reason: new LaunchFailed({ step: "state", message: `copying skills: ${(e as Error).message}` }) })
  })

  yield* step("deploy-keys")
  // Each key is recorded in meta.json the moment it exists, before anything else can fail: a
  // launch killed outright (no finalizer runs) still leaves `bottle stop` the record it
  // revokes from. Keys an earlier session could not revoke stay recorded beside the new ones.
  const previous = options.fresh ? Option.none<BottleMeta>() : yield* state.readJsonIfAny(slug, "meta.json", BottleMeta)
  const meta = yield* Ref.make<BottleMeta>({ slug, backend: plan.backend, createdAt: new Date().toISOString(), deployKeys: Option.match(previous, { onNone: () => [], onSome: (m: BottleMeta) => m.deployKeys }) })
  const saveMeta = (f: (m: BottleMeta) => BottleMeta) => Ref.updateAndGet(meta, f).pipe(Effect.flatMap((m) => state.writeJson(slug, "meta.json", m)))
  yield* saveMeta((m) => m)
  const created: Array<DeployKeyRef> = []
  // Added before the keys, so it runs after all their releases: a revoked key is no longer
  // recorded; one that could not be revoked stays, for `bottle stop` to retry.
  yield* Effect.addFinalizer(() =>
    Ref.get(revocationFailures).pipe(
      Effect.flatMap((failed) => {
        const revoked = (k: { readonly repo: string; readonly id: number }) =>
          created.some((c) => c.repo === k.repo && c.id === k.id) && !failed.some((f) => f.key.repo === k.repo && f.key.id === k.id)
        return saveMeta((m) => ({ ...m, deployKeys: m.deployKeys.filter((k) => !revoked(k)) }))
      }),
      Effect.catchCause((c) => Effect.logError(`could not update ${path.join(dir, "meta.json")}`, c))
    )
  )
  const record = (ref: DeployKeyRef, tokenEnv: string): RecordedKey =>
    ({ provider: ref.provider, apiUrl: ref.apiUrl, repo: ref.repo, id: ref.id, title: ref.title, tokenEnv })
  for (const u of plan.git.upstreams) {
    if (!u.deploy_key) continue
    const dk = u.deploy_key
    // The manifest requires api_url for gitea; a saved plan that lacks it is refused, never sent to GitHub.
    const apiUrl = dk.api_url ?? (dk.provider === "github" ? GITHUB_API : undefined)
    if (apiUrl === undefined) {
      return yield* new LaunchError({ reason: new LaunchFailed({ step: "deploy-keys", message: `the gitea deploy key for ${dk.repo} has no api_url` }) })
    }
    const title = `bot-bottle ${slug}`
    const pair = deployKeyPair(`${title} ${u.name}`)
    yield* state.writeFile(slug, deployKeyFile(u.name), pair.privateKey, 0o600)
    const ref = yield* gitHost.deployKey(
      { provider: dk.provider, apiUrl, repo: dk.repo, token: Redacted.make(options.env[dk.token_env] ?? ""), title, publicKey: pair.publicKey, readOnly: false },
      (r: DeployKeyRef, e: GitHostError) => Ref.update(revocationFailures, (xs) => [...xs, { key: record(r, dk.token_env), message: e.message }])
    )
    created.push(ref)
    yield* saveMeta((m) => ({ ...m, deployKeys: [...m.deployKeys, record(ref, dk.token_env)] }))
  }

  // The CA, the images (a hash check each when nothing changed) and the egress network do not
  // depend on each other; the egress network is only joined by the bundle once it runs, so its
  // creation stays off the containers' path.
  const sources = options.images ?? { agent: agentImageSource(), bundle: bundleImageSource() }
  const buildOptions = { env: options.env, ...(options.onBuildProgress ? { onProgress: options.onBuildProgress } : {}) }
  const images = baseImageIds([sources.agent, sources.bundle]).pipe(
    Effect.flatMap((baseIds) =>
      Effect.all([ensureImage(sources.agent, { ...buildOptions, baseIds }), ensureImage(sources.bundle, { ...buildOptions, baseIds })], { concurrency: 2 })
    )
  )
  yield* step("images")
  yield* step("networks")
  // The containers wait for the internal network only (created with the lease, above); the
  // egress network is joined by the bundle once it runs.
  const egressNetwork = Effect.forkScoped(docker.network({ name: plan.network.egress, internal: false, labels: names.labels("egress") }))
  const [[agentImage, bundleImage], egressNetworkFiber] = yield* Effect.all([images, egressNetwork, bottleCa], { concurrency: 3 })
  yield* saveMeta((m) => ({ ...m, agentImage: agentImage.tag, bundleImage: bundleImage.tag }))

  // The bundle and the agent start side by side: the agent needs the bundle only when its
  // command runs, so the bundle's start-up overlaps the agent's creation and provisioning.
  // Both are acquired in this scope; either failing interrupts the other, and releases run.
  // The bundle gets the tokens its egress routes inject, nothing else: a deploy key's admin
  // token (which can create keys on the repository) is used here, on the host, only.
  const routeTokens = new Set(plan.egress.routes.flatMap((r) => (r.auth ? [r.auth.token_env] : [])))
  const tokens = Object.fromEntries([...routeTokens].map((env) => [env, Redacted.make(options.env[env] ?? "")]))
  const startBundle = Effect.gen(function*() {
    yield* step("bundle")
    const bundle = yield* docker.container({
      name: names.bundle,
      image: bundleImage.tag,
      // The egress network is joined once the bundle runs (below): it is only needed once the
      // agent makes a request, and the bundle then briefly has fewer routes, never more.
      networks: [{ name: plan.network.internal, ip: plan.network.bundleIp }],
      env: {
        BOTTLE_SLUG: slug,
        BOTTLE_DAEMONS: plan.daemons.join(","),
        BOTTLE_EGRESS_DIR: BUNDLE_EGRESS_DIR,
        BOTTLE_EGRESS_LISTEN: `0.0.0.0:${EGRESS_PORT}`,
        ...(extraEgressCa ? { BOTTLE_EGRESS_EXTRA_CA: `${BUNDLE_EGRESS_DIR}/extra-ca.pem` } : {})
      },
      secretEnv: tokens,
      labels: names.labels("bundle"),
      // The bundle runs as the host user who owns the state dir (0700), so it can read its
      // config and CA key without the dir being opened to anyone else.
      ...(process.getuid && process.getgid ? { user: `${process.getuid()}:${process.getgid()}` } : {}),
      mounts: [{ source: egressDir, target: BUNDLE_EGRESS_DIR, readonly: false }],
      extraArgs: ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    })
    yield* step("bundle:ready")
    yield* Effect.all([
      Fiber.join(egressNetworkFiber).pipe(Effect.andThen(docker.connectNetwork(bundle.name, { name: plan.network.egress }))),
      waitForBundle(bundle.name, options.readyTimeoutMs ?? 30_000)
    ], { concurrency: 2 })
    return bundle
  })
  const startAgent = Effect.gen(function*() {
    yield* step("agent")
    const agent = yield* docker.container({
      name: names.agent,
      image: agentImage.tag,
      networks: [{ name: plan.network.internal }],
      env: { ...plan.env, HOME: AGENT_HOME },
      labels: names.labels("agent"),
      mounts: [
        { source: agentDir, target: AGENT_PROVISION_DIR, readonly: true },
        // Never chowned: these are the user's own files, owned as they are on the host.
        ...(plan.mountCwd ? mountedWorkspace(plan) : [])
      ],
      workdir: plan.workdir,
      user: "root",
      hostname: slug,
      command: ["sleep", "infinity"],
      ...(plan.resources.cpus !== undefined ? { cpus: plan.resources.cpus } : {}),
      ...(plan.resources.memory !== undefined ? { memory: plan.resources.memory } : {}),
      extraArgs: [
        "--init",
        // The engine's DNS would forward lookups of outside names for the agent (on engines
        // before 26.0.0 even through the host's namespace, CVE-2024-29018: a DNS exfiltration
        // channel). Pointed at the sidecar, where nothing answers on port 53, they go nowhere;
        // names on the bottle's own network still resolve.
        "--dns", plan.network.bundleIp,
        // No IPv6 at all: --internal and inhibit_ipv4 close IPv4 only, and link-local IPv6
        // could otherwise reach host services listening on ::.
        "--sysctl", "net.ipv6.conf.all.disable_ipv6=1",
        "--sysctl", "net.ipv6.conf.default.disable_ipv6=1",
        "--cap-drop", "ALL",
        "--cap-add", "CHOWN", "--cap-add", "DAC_OVERRIDE", "--cap-add", "FOWNER", "--cap-add", "SETUID", "--cap-add", "SETGID",
        "--security-opt", "no-new-privileges"
      ]
    })
    yield* step("provision")
    if (plan.copyCwd) yield* docker.copyTo(agent.name, `${plan.cwd}/.`, plan.workdir)
    const prov = yield* docker.exec(agent.name, provisionArgv(plan, SKILLS_DIR), { user: "root" })
    if (prov.exitCode !== 0) {
      return yield* new LaunchError({ reason: new LaunchFailed({ step: "provision", message: prov.stderr.trim() || `exit ${prov.exitCode}` }) })
    }
    return agent
  })
  const [bundle, agent] = yield* Effect.all([startBundle, startAgent], { concurrency: 2 })
  return { plan, agent: agent.name, bundle: bundle.name }
})

/**
 * The cwd mounted read-write, with what would run code on the host later laid over it
 * read-only: git's config and hooks (core.fsmonitor, hooks run at the user's next git
 * command) and the manifest (which names routes and the tokens they get).
 */
const mountedWorkspace = (plan: BottlePlan) => [
  { source: plan.cwd, target: plan.workdir, readonly: false },
  ...[".git/config", ".git/hooks", "bottle.yaml"]
    .filter((rel) => fs.existsSync(path.join(plan.cwd, rel)))
    .map((rel) => ({ source: path.join(plan.cwd, rel), target: `${plan.workdir}/${rel}`, readonly: true }))
]

/** Follows the bundle's log to its readiness line; an unhealthy line or its exit fails. */
const waitForBundle = Effect.fnUntraced(function*(name: string, timeoutMs: number) {
  const docker = yield* Docker
  const fail = (message: string) => new LaunchError({ reason: new LaunchFailed({ step: "bundle", message }) })
  const line = yield* docker.waitForLogLine(name, (l) => l.startsWith(READY_LINE) || l.startsWith(UNHEALTHY_LINE)).pipe(
    Effect.timeoutOrElse({ duration: timeoutMs, orElse: () => Effect.fail(fail(`the sidecar bundle did not become ready in ${timeoutMs} ms`)) })
  )
  if (line === undefined) return yield* fail(`the sidecar bundle exited; see \`docker logs ${name}\``)
  if (line.startsWith(UNHEALTHY_LINE)) return yield* fail(`the sidecar bundle is ${line.slice("bottle-bundle: ".length)}`)
})

/** Attach: run the agent's command with the caller's terminal; returns its exit code. */
export const attach = Effect.fn("attach")(function*(plan: BottlePlan) {
  const docker = yield* Docker
  const state = yield* StateStore
  return yield* docker.execInteractive(bottleNames(state.root, plan.slug).agent, [...plan.command], {
    tty: process.stdin.isTTY === true && process.stdout.isTTY === true,
    user: "node",
    workdir: plan.workdir,
    env: { ...plan.env, HOME: AGENT_HOME }
  })
})

/** Re-records keys whose revocation failed, when the failed launch's state dir went with it. */
const keepRecord = Effect.fnUntraced(function*(plan: BottlePlan, keys: ReadonlyArray<RecordedKey>) {
  const state = yield* StateStore
  // A record already there, even one that does not decode, is left as it is.
  const recorded = yield* state.readJsonIfAny(plan.slug, "meta.json", BottleMeta).pipe(Effect.map(Option.isSome), Effect.orElseSucceed(() => true))
  if (recorded) return
  const meta: BottleMeta = { slug: plan.slug, backend: plan.backend, createdAt: new Date().toISOString(), deployKeys: keys }
  yield* state.writeJson(plan.slug, "meta.json", meta)
})

/** One line for what ended an attempt: its first error, else its first defect, else an interruption. */
const summarize = (cause: Cause.Cause<unknown>): string => {
  const text = (u: unknown) => (u instanceof Error ? u.message : String(u))
  const failure = cause.reasons.find(Cause.isFailReason)
  if (failure) return text(failure.error)
  const defect = cause.reasons.find(Cause.isDieReason)
  return defect ? `defect: ${text(defect.defect)}` : "interrupted"
}

/**
 * The launch program. attach: acquire, attach, release all (whatever happens). detach:
 * acquire; on failure or interruption release all; on success leave it running.
 *
 * Nothing is lost on the way out: a revocation failure comes first (it names the keys to
 * revoke by hand, and what had failed before), and the cause still carries the launch's own
 * failure and any release that broke.
 */
export const launch = Effect.fn("launch")(function*(plan: BottlePlan, options: LaunchOptions) {
  const notBuilt = backendNotBuilt(plan.backend)
  if (notBuilt) return yield* notBuilt
  const failures = yield* Ref.make<ReadonlyArray<RevocationFailure>>([])
  // Only acquisition and the attached session are interruptible: once they end (however they
  // end), the decision to release and the releases themselves run to completion.
  return yield* Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const exit = yield* Effect.exit(restore(Effect.gen(function*() {
        const acquired = yield* acquireDockerBottle(plan, options, failures).pipe(Scope.provide(scope))
        if (options.mode === "detach") {
          return { slug: plan.slug, agentContainer: acquired.agent, bundleContainer: acquired.bundle } satisfies LaunchedBottle
        }
        const exitCode = yield* attach(acquired.plan)
        return { slug: plan.slug, agentContainer: acquired.agent, bundleContainer: acquired.bundle, exitCode } satisfies LaunchedBottle
      })))
      if (Exit.isSuccess(exit) && options.mode === "detach") return exit.value
      // Releases run in reverse order, every one of them even when one before it breaks, so
      // nothing can skip a deploy-key revocation behind it.
      const closed = yield* Effect.exit(Scope.close(scope, exit))
      const failed = yield* Ref.get(failures)
      const revocation = failed.length === 0 ? undefined : new LaunchError({
        reason: new RevocationFailed({
          keys: failed.map((f) => ({ repo: f.key.repo, id: f.key.id, message: f.message })),
          ...(Exit.isFailure(exit) ? { alsoFailed: summarize(exit.cause) } : {})
        })
      })
      if (revocation) {
        yield* Effect.logError(revocation.message)
        // A failed first launch removes its state dir; the keys still alive keep their record
        // there, so `bottle stop` can retry what the operator may not revoke by hand.
        const stranded = yield* keepRecord(plan, failed.map((f) => f.key)).pipe(Effect.exit)
        if (Exit.isFailure(stranded)) yield* Effect.logError("could not record the deploy keys left alive", stranded.cause)
      }
      const cause = Cause.combine(
        Cause.combine(revocation ? Cause.fail(revocation) : Cause.empty, Exit.isFailure(exit) ? exit.cause : Cause.empty),
        Exit.isFailure(closed) ? closed.cause : Cause.empty
      )
      return yield* (cause.reasons.length > 0 ? Effect.failCause(cause) : exit)
    })
  )
})

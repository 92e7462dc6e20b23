/**
 * launch: the side effects, as one scoped program, on whichever backend the plan names (the
 * `Backend` service: this file has no backend-specific code). Every acquisition is a resource
 * whose release is guaranteed, in reverse order, on success, failure or interruption:
 *
 *   state → lease → CA → deploy keys → { backend network ‖ images } → { bundle ‖ sandbox } → attach
 *
 * (‖: side by side; neither needs the other. The CA is minted in the background from its
 * step on, and awaited before the bundle and the sandbox, which both need it.)
 *
 * The lease skips subnets the backend's substrate already uses (anyone's), and the network step
 * moves to the next free subnet when the backend finds its subnet taken since; plan.json, the
 * bundle's address and the agent's proxy follow the subnet really obtained
 * (src/programs/subnetLease.ts).
 *
 * Deploy-key revocation runs even when other releases fail, and a revocation failure is an
 * error the operator sees, beside whatever failed before it. Each key is recorded in the
 * state dir (meta.json) the moment it exists and stays recorded until it is revoked, so even
 * a launch killed outright leaves `bottle stop` what to revoke (src/programs/deployKeys.ts).
 * In detach mode a successful launch keeps everything running, and so does an attached session
 * left with the detach keys; its teardown is `bottle stop`, which works from the state dir and
 * the backend.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Cause, Effect, Exit, Fiber, Redacted, Ref, Schema, Scope } from "effect"
import * as YAML from "yaml"
import { AGENT_HOME, mcpUserConfig, SKILLS_DIR } from "../providers/claude.ts"
import { ensureBottleCa } from "../schema/BottleCa.ts"
import type { BottlePlan } from "../schema/BottlePlan.ts"
import { superviseUrl } from "../schema/Bundle.ts"
import { DAEMONS, hostDirOf } from "../schema/BundleProtocol.ts"
import { gateUrl } from "../schema/GitGate.ts"
import type { LaunchStep } from "../schema/LaunchProgress.ts"
import { Backend, type ImageSource } from "../services/Backend.ts"
import { reportStep } from "../services/Progress.ts"
import { StateStore } from "../services/StateStore.ts"
import { probeFailureMessage } from "./isolationProbe.ts"
import { acquireDeployKeys, keepRecord, type RevocationFailure } from "./deployKeys.ts"
import { leaseSubnet, networkOnFreeSubnet, subnetsInUse } from "./subnetLease.ts"
import { mountWorkspace } from "./workspace.ts"
import { IMAGE_AGENT_ID } from "./agentUser.ts"

export class LaunchFailed extends Schema.TaggedClass<LaunchFailed>()("LaunchFailed", { step: Schema.String, message: Schema.String }) {}
export class RevocationFailed extends Schema.TaggedClass<RevocationFailed>()("RevocationFailed", {
  keys: Schema.Array(Schema.Struct({ repo: Schema.String, id: Schema.Number, message: Schema.String })),
  /** What had already failed when the keys were being revoked (the launch itself): one line names both. */
  alsoFailed: Schema.optionalKey(Schema.String)
}) {}
export class MissingToken extends Schema.TaggedClass<MissingToken>()("MissingToken", { env: Schema.String, purpose: Schema.String }) {}

export class LaunchError extends Schema.TaggedError<LaunchError>()("LaunchError", {
  reason: Schema.Union([LaunchFailed, RevocationFailed, MissingToken])
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "LaunchFailed":
        return `launch failed at ${r.step}: ${r.message}`
      case "RevocationFailed":
        return `DEPLOY KEY REVOCATION FAILED — revoke by hand now: ${r.keys.map((k) => `${k.repo} key ${k.id} (${k.message})`).join("; ")}${r.alsoFailed ? ` — and before that: ${r.alsoFailed}` : ""}`
      case "MissingToken":
        return `$${r.env} is not set on the host (needed for ${r.purpose}); export it and try again`
    }
  }
}

/** Where the sandbox sees the provisioning files (CA cert, prompt, skills), read-only. */
export const AGENT_PROVISION_DIR = "/run/bottle/agent"

export interface LaunchOptions {
  readonly mode: "attach" | "detach"
  /** A first launch creates the state dir (and removes it if the launch fails). */
  readonly fresh: boolean
  readonly env: Record<string, string | undefined>
  /** How long to wait for the bundle to report ready. */
  readonly readyTimeoutMs?: number
  /** Image build contexts (default: the package's agent-image/ and bundle/). */
  readonly images?: { readonly agent: ImageSource; readonly bundle: ImageSource } | undefined
}

export interface LaunchedBottle {
  readonly slug: string
  /** The attached session's exit code (attach mode). */
  readonly exitCode?: number
  /** The attached session was left with the detach keys: the bottle keeps running (attach mode). */
  readonly detached?: boolean
}

/**
 * Shell run as root in the agent once: trust the bottle CA, place prompt and skills, own the
 * home (and the bottle's own workspace, when first made). Paths come in as positional
 * parameters, never spliced into the script, so no manifest value can become shell syntax.
 * Ownership is fixed entry by entry (`find … ! -user`), links themselves (`-h`), never followed:
 * the home and the workspace are kept across resumes, so the agent may have planted anything
 * there, and on a copy-on-write workspace a blanket `chown -R` would copy up every file.
 * First of all the agent's user `node` takes the workspace owner's uid/gid ($8, $9; see
 * src/programs/agentUser.ts): its passwd and group lines are edited (duplicate ids allowed, as
 * `usermod -o`/`groupmod -o` would; the slim image has no shadow tools, and `usermod -u` would
 * walk the kept home as root), so every command run as `node` (exec, attach, `runuser`,
 * `setpriv`, `chown node:node`) is that uid; the home is then re-owned by `own`.
 */
const PROVISION_SCRIPT = `set -eu
provision="$1"; home="$2"; workdir="$3"; prompt="$4"; skills="$5"; own_workdir="$6"; uid="$8"; gid="$9"
if [ "$(id -u node)" != "$uid" ] || [ "$(id -g node)" != "$gid" ]; then
  for f in passwd group; do
    awk -F: -v OFS=: -v u="$uid" -v g="$gid" -v f="$f" '$1 == "node" { if (f == "passwd") { $3 = u; $4 = g } else $3 = g } 1' "/etc/$f" > "/etc/$f.bottle"
    cat "/etc/$f.bottle" > "/etc/$f"; rm -f "/etc/$f.bottle"
  done
fi
install -m 0644 "$provision/ca.pem" /usr/local/share/ca-certificates/bot-bottle.crt
# Appending is what update-ca-certificates would do for one new CA, without rehashing them all.
cat "$provision/ca.pem" >> /etc/ssl/certs/ca-certificates.crt
mkdir -p "$home/.bottle" "$workdir"
rm -f "$prompt"
install -m 0600 "$provision/prompt.md" "$prompt"
if [ -d "$provision/skills" ]; then mkdir -p "$skills" && cp -a "$provision/skills/." "$skills/"; fi
own() { find "$1" -xdev \\( ! -user node -o ! -group node \\) -exec chown -h node:node {} + ; }
own "$home"
if [ "$own_workdir" = yes ]; then own "$workdir"; fi
# supervise: merge the MCP server into Claude Code's user-scope config, keeping what is there.
# Written as the agent's user (the home is the agent's: a planted symlink must not become a
# root write); the provisioning file is read before dropping to it.
if [ -f "$provision/mcp-servers.json" ]; then node -e 'const fs=require("fs");const [s,d]=process.argv.slice(1);const add=JSON.parse(fs.readFileSync(s,"utf8")).mcpServers;process.setgid("node");process.setuid("node");let c={};try{c=JSON.parse(fs.readFileSync(d,"utf8"))}catch{}c.mcpServers={...c.mcpServers,...add};fs.writeFileSync(d,JSON.stringify(c,null,2))' "$provision/mcp-servers.json" "$home/.claude.json"; fi
# The git gate (pairs after $9: gate URL, upstream URL): the agent's git reaches each upstream
# through the gate, never through the proxy, by a config file rewritten at every provision
# (a resumed bottle's gate may have another address) and included from the global one; in a
# copied workspace, remotes naming an upstream (or an earlier address of its gate) point at the
# gate. All of it as the agent's user: the home and the workspace are the agent's (kept across
# resumes), so a planted symlink must never become a root write.
copied="$7"; shift 9
gate="$home/.bottle/gate.gitconfig"
agent() { runuser -u node -- env HOME="$home" "$@"; }
agent rm -f "$gate"
while [ "$#" -ge 2 ]; do
  agent git config --file "$gate" "url.$1.insteadOf" "$2"
  agent git config --file "$gate" "http.$1.proxy" ""
  if [ "$copied" = yes ] && [ -e "$workdir/.git" ]; then
    for r in $(agent git -C "$workdir" remote 2>/dev/null); do
      url="$(agent git -C "$workdir" config --get "remote.$r.url" || true)"
      case "$url" in "$2"|http://*:"\${1##*:}") agent git -C "$workdir" remote set-url "$r" "$1" ;; esac
    done
  fi
  shift 2
done
if [ -f "$gate" ] && ! agent git config --global --get-all include.path 2>/dev/null | grep -qxF "$gate"; then
  agent git config --global --add include.path "$gate"
fi
chmod 1777 /tmp
`
export const provisionArgv = (plan: BottlePlan, skillsDir: string, fresh: boolean) =>
  // A mounted workspace holds the user's own files, owned as they are on the host: never chowned.
  // The bottle's own workspace is given to the agent's user once, when it is first made (its
  // files are already the agent's when the agent has the cwd owner's uid: only looked at).
  ["sh", "-c", PROVISION_SCRIPT, "provision", AGENT_PROVISION_DIR, AGENT_HOME, plan.workdir, plan.promptPath, skillsDir, !plan.mountCwd && fresh ? "yes" : "no",
    plan.mountCwd ? "no" : "yes", String(plan.agentUser?.uid ?? IMAGE_AGENT_ID), String(plan.agentUser?.gid ?? IMAGE_AGENT_ID), ...plan.git.upstreams.flatMap((u, i) => [gateUrl(plan.network.bundleIp, i, u.name), u.url])]

/** Each step's failure names the step. */
const failedAt = (step: LaunchStep) => (e: { readonly message: string }) => new LaunchError({ reason: new LaunchFailed({ step, message: e.message }) })

/** The backend's failures name the step; the state's (a pool exhausted, ...) speak for themselves. */
const backendFailedAt = (step: LaunchStep) => <E extends { readonly _tag: string; readonly message: string }>(e: E) =>
  e._tag === "BackendError" ? failedAt(step)(e) : e

/**
 * The bottle's state dir and everything the bundle and the sandbox read from it: plan, routes
 * (a resumed bottle keeps its own, `bottle egress allow|deny` included), prompt, extra CA,
 * skills. Scoped: a first launch that fails removes the dir.
 */
const bottleState = Effect.fnUntraced(function*(plan: BottlePlan, options: LaunchOptions) {
  const state = yield* StateStore
  const slug = plan.slug
  if (options.fresh) yield* state.createBottleDir(slug)
  const dir = state.bottleDir(slug)
  // The egress daemon's files, in its subdir of the state (bundle protocol).
  const egress = DAEMONS.egress.stateSubdir
  if (options.fresh || !fs.existsSync(path.join(hostDirOf(dir, DAEMONS.egress), "routes.yaml"))) {
    yield* state.writeFile(slug, `${egress}/routes.yaml`, YAML.stringify({ routes: plan.egress.routes, ...(plan.egress.onUnrouted ? { on_unrouted: plan.egress.onUnrouted } : {}) }))
  }
  yield* state.writeFile(slug, "agent/prompt.md", plan.prompt)
  // The supervise daemon's settings (bundle/supervise/main.ts reads them at start).
  if (plan.supervise) {
    yield* state.writeJson(slug, `${DAEMONS.supervise.stateSubdir}/config.json`, { expirySeconds: (plan.superviseExpireMinutes ?? 30) * 60 })
  }
  // Every daemon's subdir exists, owned by us, before it is mounted (else the engine creates
  // it, as root, and the daemon, running as this user, cannot write its own state).
  yield* Effect.try({
    try: () => { for (const name of plan.daemons) fs.mkdirSync(hostDirOf(dir, DAEMONS[name]), { recursive: true, mode: 0o700 }) },
    catch: (e) => new LaunchError({ reason: new LaunchFailed({ step: "state", message: (e as Error).message }) })
  })
  const extraEgressCa = options.env["BOTTLE_EGRESS_EXTRA_CA_CERTS"]
  if (extraEgressCa) {
    yield* state.writeFile(slug, `${egress}/extra-ca.pem`, yield* Effect.try({
      try: () => fs.readFileSync(extraEgressCa, "utf8"),
      catch: (e) => failedAt("state")({ message: `BOTTLE_EGRESS_EXTRA_CA_CERTS: ${(e as Error).message}` })
    }), 0o644)
  }
  yield* Effect.try({
    try: () => {
      for (const s of plan.skills) fs.cpSync(s.source, path.join(dir, "agent", "skills", s.name), { recursive: true })
    },
    catch: (e) => failedAt("state")({ message: `copying skills: ${(e as Error).message}` })
  })
  return { stateDir: dir, egressDir: hostDirOf(dir, DAEMONS.egress), agentDir: path.join(dir, "agent") }
})

/**
 * Scoped: the bottle's address block (the subnet lease, skipping subnets the backend's substrate
 * already uses), and the plan with the address actually leased (it may differ from the one
 * shown if another bottle took it since), saved as plan.json. `avoid` is kept for the network
 * step, which may have to lease again (src/programs/subnetLease.ts).
 */
const leaseBundleAddress = Effect.fnUntraced(function*(plan: BottlePlan) {
  const avoid = yield* subnetsInUse
  return { plan: yield* leaseSubnet(plan, avoid), avoid }
})

/** Mints (or reuses) the bottle CA; the agent gets the certificate only, the key stays in the bundle's dir. */
const bottleCa = Effect.fnUntraced(function*(plan: BottlePlan, egressDir: string) {
  const state = yield* StateStore
  const ca = yield* ensureBottleCa(egressDir).pipe(Effect.mapError(failedAt("ca")))
  yield* state.writeFile(plan.slug, "agent/ca.pem", ca.certPem, 0o644)
})

/**
 * Acquires everything a bottle needs, in dependency order. Each acquisition is scoped;
 * `revocationFailures` collects deploy keys whose revocation failed during release.
 */
export const acquireBottle = Effect.fnUntraced(function*(
  initialPlan: BottlePlan,
  options: LaunchOptions,
  revocationFailures: Ref.Ref<ReadonlyArray<RevocationFailure>>
) {
  const backend = yield* Backend
  // Everything that can be checked before acquiring anything.
  for (const t of initialPlan.egress.tokens) {
    if (!options.env[t.env]) return yield* new LaunchError({ reason: new MissingToken({ env: t.env, purpose: "an egress route or deploy key" }) })
  }

  yield* reportStep("state")
  const dirs = yield* bottleState(initialPlan, options)

  yield* reportStep("lease")
  const leased = yield* leaseBundleAddress(initialPlan).pipe(Effect.mapError(backendFailedAt("lease")))

  yield* reportStep("ca")
  // Minted in the background (it loads the X.509 library: the CLI's start-up never pays for
  // it), uninterruptible: an interrupted launch waits for it before removing the state dir.
  const ca = yield* Effect.forkScoped(bottleCa(leased.plan, dirs.egressDir))

  yield* reportStep("deploy-keys")
  const keys = yield* acquireDeployKeys(leased.plan, options, revocationFailures).pipe(Effect.mapError(failedAt("deploy-keys")))

  // The images (a hash check each when nothing changed) and the network do not depend on
  // each other. The network may end up on another subnet than the one leased (taken on the
  // substrate since): the plan from here on is the one it is on.
  yield* reportStep("network")
  yield* reportStep("images")
  //
  // mount_cwd: the cwd, with what the host would run later laid over it read-only
  // (./workspace.ts). Acquired here, before the bundle and the sandbox, so its release (the
  // placeholders' removal) runs after theirs; the placeholders stay while a container of the
  // bottle is still there (its removal failed), for `bottle stop`.
  const anyPartLeft = backend.inspect(initialPlan.slug).pipe(Effect.map((found) => found.some((b) => b.parts.length > 0)), Effect.orElseSucceed(() => true))
  const workspace = initialPlan.mountCwd
    ? mountWorkspace(initialPlan, anyPartLeft).pipe(Effect.mapError((e) => new LaunchError({ reason: new LaunchFailed({ step: "workspace", message: e.message }) })))
    : Effect.succeed([])
  const [{ plan, network }, images, workspaceMounts] = yield* Effect.all([
    networkOnFreeSubnet(leased.plan, leased.avoid).pipe(Effect.mapError(backendFailedAt("network"))),
    backend.images({ env: options.env, sources: options.images }).pipe(Effect.mapError(failedAt("images"))),
    workspace
  ], { concurrency: 3 })
  yield* keys.saveMeta((m) => ({ ...m, agentImage: images.agent, bundleImage: images.bundle }))
  yield* Fiber.join(ca)
  // supervise: the MCP server at the bundle's final address, at user scope (provisioning merges
  // it into the agent's ~/.claude.json).
  if (plan.supervise) {
    const state = yield* StateStore
    yield* state.writeFile(plan.slug, "agent/mcp-servers.json", JSON.stringify(mcpUserConfig(superviseUrl(plan.network.bundleIp))), 0o644)
  }

  // The bundle and the sandbox start side by side: the agent needs the bundle only when its
  // command runs. Either failing interrupts the other, and releases run. The bundle gets the
  // tokens its egress routes inject, nothing else: a deploy key's admin token (which can create
  // keys on the repository) is used here, on the host, only. The sandbox gets no secret.
  const routeTokens = new Set(plan.egress.routes.flatMap((r) => (r.auth ? [r.auth.token_env] : [])))
  const bundle = reportStep("bundle").pipe(Effect.andThen(backend.bundle(plan, network, {
    image: images.bundle,
    stateDir: dirs.stateDir,
    secretEnv: Object.fromEntries([...routeTokens].map((env) => [env, Redacted.make(options.env[env] ?? "")])),
    readyTimeoutMs: options.readyTimeoutMs ?? 30_000
  })), Effect.mapError(failedAt("bundle")))
  const sandbox = reportStep("sandbox").pipe(Effect.andThen(backend.sandbox(plan, network, {
    image: images.agent,
    provisionDir: dirs.agentDir,
    provisionTarget: AGENT_PROVISION_DIR,
    mounts: workspaceMounts,
    // The bottle's own workspace (kept across stop/resume), seeded from the cwd with copy_cwd.
    workspace: plan.mountCwd ? undefined : { seed: plan.copyCwd ? plan.cwd : undefined },
    provision: provisionArgv(plan, SKILLS_DIR, options.fresh),
    fresh: options.fresh
  })), Effect.mapError(failedAt("sandbox")))
  yield* Effect.all([bundle, sandbox], { concurrency: 2, discard: true })

  // Never trust a flag: before anything attaches or any credential-bearing request can happen,
  // the sandbox must reach the bundle and nothing else. A failure tears the bottle down.
  yield* reportStep("probe")
  const report = yield* backend.probe(plan).pipe(Effect.mapError(failedAt("probe")))
  if (!report.ok) return yield* new LaunchError({ reason: new LaunchFailed({ step: "probe", message: probeFailureMessage(report) }) })
  return plan
})

/** Attach: run the agent's command with the caller's terminal, until it exits or is detached from. */
export const attach = Effect.fn("attach")(function*(plan: BottlePlan) {
  const backend = yield* Backend
  yield* reportStep("attach")
  return yield* backend.session(plan, [...plan.command])
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
  // A backend that cannot run fails here, before anything is acquired.
  yield* (yield* Backend).preflight
  const failures = yield* Ref.make<ReadonlyArray<RevocationFailure>>([])
  // Only acquisition and the attached session are interruptible: once they end (however they
  // end), the decision to release and the releases themselves run to completion.
  return yield* Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      let ran = false
      const exit = yield* Effect.exit(restore(Effect.gen(function*() {
        const acquired = yield* acquireBottle(plan, options, failures).pipe(Scope.provide(scope))
        ran = true
        if (options.mode === "detach") return { slug: plan.slug } satisfies LaunchedBottle
        const end = yield* attach(acquired).pipe(Effect.mapError(failedAt("attach")))
        return (end._tag === "Detached" ? { slug: plan.slug, detached: true } : { slug: plan.slug, exitCode: end.exitCode }) satisfies LaunchedBottle
      })))
      // Detached (by the flag, or by the detach keys during the session): left running.
      if (Exit.isSuccess(exit) && (options.mode === "detach" || exit.value.detached === true)) return exit.value
      // Releases run in reverse order, every one of them even when one before it breaks, so
      // nothing can skip a deploy-key revocation behind it.
      // Once the bottle has run, its state (state dir, workspace, home) is the agent's work: how
      // the session ended (an error, an interruption) never discards it as a failed launch would.
      const closed = yield* Effect.exit(Scope.close(scope, ran ? (Exit.void as Exit.Exit<unknown, unknown>) : exit))
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

/**
 * Deploy keys, shared by `launch` (acquire) and `bottle stop` (revoke what is recorded).
 *
 * Guarantees: a key pair is fresh for each upstream and each launch (ssh-keygen, never reused);
 * its private half is kept 0600 in the gate's subdir of the bottle's state (the bundle's, never
 * the agent's); before the host is asked to create a key, a *pending* record of it (one file
 * per key, `deploy-keys/<upstream>.json`: repository, title, public key) is written, and once
 * the host has it the key is recorded in meta.json before anything else can fail and stays
 * recorded until it is revoked. So even a process killed between the host creating a key and
 * us learning its id leaves a record: `bottle stop` lists the repository's keys and revokes the
 * pending one by its public key or title. Revocation failures are collected, never swallowed:
 * the caller reports them.
 *
 * Titles are `bot-bottle <slug> <upstream> <host id>`: the host id (a random id kept in the
 * state root) tells this machine's keys from other machines' in `bottle cleanup --keys`.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as crypto from "node:crypto"
import { Effect, Option, Redacted, Ref, Schema } from "effect"
import { BottleMeta, type BottlePlan, SavedBottlePlan } from "../schema/BottlePlan.ts"
import { DAEMONS } from "../schema/BundleProtocol.ts"
import { allowsAnyPush, GATE_CONFIG_FILE, type GateConfig, gatePort, GITHUB_KNOWN_HOSTS, pushPolicyOf, sshHostOf } from "../schema/GitGate.ts"
import type { GitUpstream } from "../schema/Manifest.ts"
import { GitHost, type DeployKeyRef, type DeployKeyTarget, type GitHostError } from "../services/GitHost.ts"
import { ProcessRunner } from "../services/ProcessRunner.ts"
import { StateStore } from "../services/StateStore.ts"

/** Where an upstream's deploy-key private half lives, relative to the bottle's state dir (0600). */
export const deployKeyFile = (upstream: string) => `${DAEMONS["git-gate"].stateSubdir}/keys/${upstream}`
/** Where the gate pins an upstream's SSH host keys, relative to the bottle's state dir. */
export const knownHostsFile = (upstream: string) => `${DAEMONS["git-gate"].stateSubdir}/known_hosts/${upstream}`

/** The pending/created record of one key (outside the bundle's mount: the bundle cannot touch it). */
export const KEY_RECORDS_DIR = "deploy-keys"
export const keyRecordFile = (upstream: string) => `${KEY_RECORDS_DIR}/${upstream}.json`

export const KeyRecord = Schema.Struct({
  status: Schema.Literals(["pending", "created"]),
  upstream: Schema.String,
  provider: Schema.Literals(["github", "gitea"]),
  apiUrl: Schema.String,
  repo: Schema.String,
  title: Schema.String,
  publicKey: Schema.String,
  tokenEnv: Schema.String,
  id: Schema.optionalKey(Schema.Number)
})
export type KeyRecord = typeof KeyRecord.Type

/** This machine's id in key titles (created once, kept in the state root). */
export const HOST_ID_FILE = "host-id"
export const hostId = Effect.fnUntraced(function*() {
  const state = yield* StateStore
  const file = path.join(state.root, HOST_ID_FILE)
  return yield* Effect.try({
    try: () => {
      try {
        const id = fs.readFileSync(file, "utf8").trim()
        if (/^[0-9a-f]{8,32}$/u.test(id)) return id
      } catch {
        // none yet
      }
      fs.mkdirSync(state.root, { recursive: true, mode: 0o700 })
      const id = crypto.randomBytes(6).toString("hex")
      // First writer wins: two launches at once agree on one id.
      try {
        fs.writeFileSync(file, id + "\n", { flag: "wx", mode: 0o600 })
        return id
      } catch {
        return fs.readFileSync(file, "utf8").trim()
      }
    },
    catch: (e) => new DeployKeyFailed({ message: `${file}: ${(e as Error).message}` })
  })
})

/** A deploy key's title: `bot-bottle <slug> <upstream> <host id>`. */
export const keyTitle = (slug: string, upstream: string, host: string) => `bot-bottle ${slug} ${upstream} ${host}`
export const parseKeyTitle = (title: string): { slug: string; upstream: string; hostId: string } | undefined => {
  const m = /^bot-bottle (\S+) (\S+) (\S+)$/u.exec(title)
  return m ? { slug: m[1]!, upstream: m[2]!, hostId: m[3]! } : undefined
}

/** The base64 blob of an OpenSSH public key line (what hosts compare). */
const keyBlob = (line: string) => line.trim().split(/\s+/u)[1] ?? ""

const GITHUB_API_DEFAULT = "https://api.github.com"
export const apiUrlOf = (dk: NonNullable<GitUpstream["deploy_key"]>) => dk.api_url ?? (dk.provider === "github" ? GITHUB_API_DEFAULT : undefined)

export class DeployKeyFailed extends Schema.TaggedError<DeployKeyFailed>()("DeployKeyFailed", { message: Schema.String }) {}

export type RecordedKey = BottleMeta["deployKeys"][number]
export type RevocationFailure = { readonly key: RecordedKey; readonly message: string }

/**
 * A fresh ed25519 key pair from `ssh-keygen -t ed25519 -N '' -C comment`: the public half as
 * an OpenSSH line (what the git host registers), the private half in OpenSSH's own format
 * (what ssh reads). Made in a private temp dir that is removed whatever happens.
 */
export const deployKeyPair = Effect.fn("deployKeyPair")(function*(comment: string) {
  const runner = yield* ProcessRunner
  const dir = yield* Effect.acquireRelease(
    Effect.try({
      try: () => fs.mkdtempSync(path.join(os.tmpdir(), "bottle-key-")),
      catch: (e) => new DeployKeyFailed({ message: `temp dir: ${(e as Error).message}` })
    }),
    (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
  )
  const file = path.join(dir, "key")
  yield* runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]).pipe(
    Effect.mapError((e) => new DeployKeyFailed({ message: e.message }))
  )
  return yield* Effect.try({
    try: () => ({ publicKey: fs.readFileSync(`${file}.pub`, "utf8").trim(), privateKey: fs.readFileSync(file, "utf8") }),
    catch: (e) => new DeployKeyFailed({ message: `reading the key ssh-keygen made: ${(e as Error).message}` })
  })
}, Effect.scoped)

const record = (ref: DeployKeyRef, tokenEnv: string): RecordedKey =>
  ({ provider: ref.provider, apiUrl: ref.apiUrl, repo: ref.repo, id: ref.id, title: ref.title, tokenEnv })

/**
 * Scoped: one deploy key per upstream that asks for one, each revoked when the scope closes.
 * Keys an earlier session could not revoke stay recorded beside the new ones (`fresh: false`).
 * A key whose revocation fails is added to `revocationFailures` and stays recorded.
 */
export const acquireDeployKeys = Effect.fnUntraced(function*(
  plan: BottlePlan,
  options: { readonly fresh: boolean; readonly env: Record<string, string | undefined> },
  revocationFailures: Ref.Ref<ReadonlyArray<RevocationFailure>>
) {
  const state = yield* StateStore
  const gitHost = yield* GitHost
  const slug = plan.slug
  const previous = options.fresh ? Option.none<BottleMeta>() : yield* state.readJsonIfAny(slug, "meta.json", BottleMeta)
  const meta = yield* Ref.make<BottleMeta>({
    slug,
    backend: plan.backend,
    createdAt: new Date().toISOString(),
    deployKeys: Option.match(previous, { onNone: () => [], onSome: (m: BottleMeta) => m.deployKeys })
  })
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
      Effect.catchCause((c) => Effect.logError(`could not update ${path.join(state.bottleDir(slug), "meta.json")}`, c))
    )
  )
  const host = plan.git.upstreams.some((u) => u.deploy_key) ? yield* hostId() : ""
  for (const u of plan.git.upstreams) {
    if (!u.deploy_key) continue
    const dk = u.deploy_key
    // The manifest requires api_url for gitea; a saved plan that lacks it is refused, never sent to GitHub.
    const apiUrl = apiUrlOf(dk)
    if (apiUrl === undefined) return yield* new DeployKeyFailed({ message: `the gitea deploy key for ${dk.repo} has no api_url` })
    const title = keyTitle(slug, u.name, host)
    const pair = yield* deployKeyPair(title)
    yield* state.writeFile(slug, deployKeyFile(u.name), pair.privateKey, 0o600)
    const pending: KeyRecord = { status: "pending", upstream: u.name, provider: dk.provider, apiUrl, repo: dk.repo, title, publicKey: pair.publicKey, tokenEnv: dk.token_env }
    yield* state.writeJson(slug, keyRecordFile(u.name), pending)
    const ref = yield* gitHost.deployKey(
      { provider: dk.provider, apiUrl, repo: dk.repo, token: Redacted.make(options.env[dk.token_env] ?? ""), title, publicKey: pair.publicKey, readOnly: !allowsAnyPush(pushPolicyOf(u)) },
      (r: DeployKeyRef, e: GitHostError) => Ref.update(revocationFailures, (xs) => [...xs, { key: record(r, dk.token_env), message: e.message }])
    )
    created.push(ref)
    yield* saveMeta((m) => ({ ...m, deployKeys: [...m.deployKeys, record(ref, dk.token_env)] }))
    // meta.json has it now, by id: the pending record has done its work.
    yield* removeRecord(slug, u.name)
  }
  yield* writeGateFiles(plan)
  /** Records what else the launch learnt about the bottle (its images) beside the keys. */
  return { saveMeta }
})

/** Re-records keys whose revocation failed, when the failed launch's state dir went with it. */
export const keepRecord = Effect.fnUntraced(function*(plan: BottlePlan, keys: ReadonlyArray<RecordedKey>) {
  const state = yield* StateStore
  // A record already there, even one that does not decode, is left as it is.
  const recorded = yield* state.readJsonIfAny(plan.slug, "meta.json", BottleMeta).pipe(Effect.map(Option.isSome), Effect.orElseSucceed(() => true))
  if (recorded) return
  const meta: BottleMeta = { slug: plan.slug, backend: plan.backend, createdAt: new Date().toISOString(), deployKeys: keys }
  yield* state.writeJson(plan.slug, "meta.json", meta)
})

/**
 * Revokes a bottle's recorded deploy keys: it needs the state dir and the git host only, never
 * the backend. No meta.json: nothing was recorded (the launch failed before any key). An
 * unreadable one is an error naming it: it may record keys we cannot see. Keys that could not
 * be revoked stay recorded, for the next `bottle stop`; they are returned.
 */
export const revokeRecordedKeys = Effect.fnUntraced(function*(
  slug: string,
  options: { readonly env: Record<string, string | undefined>; readonly onRevoked?: ((key: { readonly repo: string; readonly id: number }) => void) | undefined }
) {
  const state = yield* StateStore
  const gitHost = yield* GitHost
  const failed: Array<{ repo: string; id: number; message: string }> = []
  for (const r of yield* pendingRecords(slug)) {
    yield* revokePending(slug, r, options).pipe(
      Effect.catch((e) => Effect.sync(() => failed.push({ repo: r.repo, id: 0, message: `pending key "${r.title}": ${e.message}` })))
    )
  }
  const recorded = yield* state.readJsonIfAny(slug, "meta.json", BottleMeta)
  if (Option.isNone(recorded)) return failed
  const meta = recorded.value
  const remaining: Array<RecordedKey> = []
  for (const k of meta.deployKeys) {
    const revoked = yield* gitHost.revokeDeployKey(k, Redacted.make(options.env[k.tokenEnv] ?? "")).pipe(
      Effect.as(true),
      Effect.catch((e) => Effect.sync(() => (failed.push({ repo: k.repo, id: k.id, message: e.message }), false)))
    )
    if (revoked) yield* Effect.sync(() => options.onRevoked?.(k))
    else remaining.push(k)
  }
  if (remaining.length !== meta.deployKeys.length) yield* state.writeJson(slug, "meta.json", { ...meta, deployKeys: remaining })
  return failed
})

const removeRecord = Effect.fnUntraced(function*(slug: string, upstream: string) {
  const state = yield* StateStore
  yield* Effect.sync(() => fs.rmSync(path.join(state.bottleDir(slug), keyRecordFile(upstream)), { force: true }))
})

/** The bottle's pending key records (unreadable ones are skipped: there is nothing to match them by). */
const pendingRecords = Effect.fnUntraced(function*(slug: string) {
  const state = yield* StateStore
  const dir = path.join(state.bottleDir(slug), KEY_RECORDS_DIR)
  const names = yield* Effect.sync(() => {
    try {
      return fs.readdirSync(dir).filter((n) => n.endsWith(".json"))
    } catch {
      return []
    }
  })
  const out: Array<KeyRecord> = []
  for (const n of names) {
    const r = yield* state.readJsonIfAny(slug, `${KEY_RECORDS_DIR}/${n}`, KeyRecord).pipe(Effect.orElseSucceed(() => Option.none<KeyRecord>()))
    if (Option.isSome(r)) out.push(r.value)
  }
  return out
})

/**
 * Revokes the keys a pending record stands for: the repository's keys carrying its public key
 * or its title (the host may have created it before the process died). The record goes once
 * the repository holds no such key.
 */
const revokePending = Effect.fnUntraced(function*(slug: string, r: KeyRecord, options: { readonly env: Record<string, string | undefined>; readonly onRevoked?: ((key: { readonly repo: string; readonly id: number }) => void) | undefined }) {
  const gitHost = yield* GitHost
  const token = Redacted.make(options.env[r.tokenEnv] ?? "")
  const target: DeployKeyTarget = { provider: r.provider, apiUrl: r.apiUrl, repo: r.repo }
  const listed = yield* gitHost.listDeployKeys(target, token)
  for (const k of listed.filter((k) => keyBlob(k.key) === keyBlob(r.publicKey) || k.title === r.title)) {
    yield* gitHost.revokeDeployKey({ ...target, id: k.id, title: k.title }, token)
    yield* Effect.sync(() => options.onRevoked?.({ repo: r.repo, id: k.id }))
  }
  yield* removeRecord(slug, r.upstream)
})

/**
 * The gate's files in its state subdir: gate.json (upstreams, ports, policies), each
 * upstream's SSH key (the deploy key made above, or a copy of the manifest's identity_file,
 * 0600) and pinned host keys (the manifest's known_hosts_file; GitHub's published keys for
 * github.com; otherwise none, and the gate then says how to pin them).
 */
export const writeGateFiles = Effect.fnUntraced(function*(plan: BottlePlan) {
  const state = yield* StateStore
  if (plan.git.upstreams.length === 0) return
  const base = path.dirname(plan.manifestFile)
  const resolve = (p: string) => path.resolve(base, p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p)
  const read = (what: string, p: string) => Effect.try({
    try: () => fs.readFileSync(resolve(p), "utf8"),
    catch: (e) => new DeployKeyFailed({ message: `${what} ${resolve(p)}: ${(e as Error).message}` })
  })
  const sub = DAEMONS["git-gate"].stateSubdir
  const rel = (file: string) => path.posix.relative(sub, file)
  const config: { upstreams: Array<GateConfig["upstreams"][number]> } = { upstreams: [] }
  for (const [i, u] of plan.git.upstreams.entries()) {
    let keyFile: string | undefined
    if (u.deploy_key) keyFile = deployKeyFile(u.name)
    else if (u.identity_file) {
      yield* state.writeFile(plan.slug, deployKeyFile(u.name), yield* read(`git.upstreams ${u.name} identity_file`, u.identity_file), 0o600)
      keyFile = deployKeyFile(u.name)
    }
    const pinned = u.known_hosts_file
      ? yield* read(`git.upstreams ${u.name} known_hosts_file`, u.known_hosts_file)
      : sshHostOf(u.url)?.host === "github.com" ? GITHUB_KNOWN_HOSTS : ""
    yield* state.writeFile(plan.slug, knownHostsFile(u.name), pinned, 0o644)
    config.upstreams.push({
      name: u.name,
      url: u.url,
      port: gatePort(i),
      push: pushPolicyOf(u),
      ...(keyFile ? { keyFile: rel(keyFile) } : {}),
      knownHostsFile: rel(knownHostsFile(u.name))
    })
  }
  yield* state.writeJson(plan.slug, `${sub}/${GATE_CONFIG_FILE}`, config)
})

export interface SweptKey {
  readonly repo: string
  readonly id: number
  readonly title: string
  readonly slug: string
}

/**
 * `bottle cleanup --keys`: every repository a bottle of this state root is configured for (its
 * plan's deploy keys, and any key record) is listed on its host, and the `bot-bottle …` keys
 * of this machine (host id in the title) whose bottle no longer runs are revoked, their
 * records with them. Keys of running bottles, of other machines and of bottles whose state
 * cannot be told (backend unreachable) are left alone. Failures are returned, one per
 * repository or key, never swallowed.
 */
export const sweepKeys = Effect.fnUntraced(function*(
  bottles: ReadonlyArray<{ readonly slug: string; readonly running: boolean | undefined }>,
  options: { readonly dryRun: boolean; readonly env: Record<string, string | undefined> }
) {
  const state = yield* StateStore
  const gitHost = yield* GitHost
  const me = yield* hostId()
  const targets = new Map<string, DeployKeyTarget & { readonly tokenEnv: string }>()
  const add = (t: DeployKeyTarget & { readonly tokenEnv: string }) => targets.set(`${t.provider} ${t.apiUrl} ${t.repo}`, t)
  for (const b of bottles) {
    const plan = yield* state.readJsonIfAny(b.slug, "plan.json", SavedBottlePlan).pipe(Effect.orElseSucceed(() => Option.none()))
    if (Option.isSome(plan)) {
      for (const u of plan.value.git.upstreams) {
        const apiUrl = u.deploy_key ? apiUrlOf(u.deploy_key) : undefined
        if (u.deploy_key && apiUrl) add({ provider: u.deploy_key.provider, apiUrl, repo: u.deploy_key.repo, tokenEnv: u.deploy_key.token_env })
      }
    }
    const meta = yield* state.readJsonIfAny(b.slug, "meta.json", BottleMeta).pipe(Effect.orElseSucceed(() => Option.none()))
    if (Option.isSome(meta)) for (const k of meta.value.deployKeys) add({ provider: k.provider, apiUrl: k.apiUrl, repo: k.repo, tokenEnv: k.tokenEnv })
    for (const r of yield* pendingRecords(b.slug)) add({ provider: r.provider, apiUrl: r.apiUrl, repo: r.repo, tokenEnv: r.tokenEnv })
  }
  const stillRunning = (slug: string) => {
    const b = bottles.find((x) => x.slug === slug)
    // A bottle we do not know of (state gone) no longer runs; one whose status is unknown may.
    return b === undefined ? false : b.running !== false
  }
  const revoked: Array<SweptKey> = []
  const failures: Array<string> = []
  for (const t of targets.values()) {
    const token = Redacted.make(options.env[t.tokenEnv] ?? "")
    const listed = yield* gitHost.listDeployKeys(t, token).pipe(
      Effect.catch((e) => Effect.sync(() => (failures.push(`${t.repo}: ${e.message}`), undefined)))
    )
    if (listed === undefined) continue
    for (const k of listed) {
      const title = parseKeyTitle(k.title)
      if (!title || title.hostId !== me || stillRunning(title.slug)) continue
      const key = { repo: t.repo, id: k.id, title: k.title, slug: title.slug }
      if (options.dryRun) {
        revoked.push(key)
        continue
      }
      const done = yield* gitHost.revokeDeployKey({ ...t, id: k.id, title: k.title }, token).pipe(
        Effect.as(true),
        Effect.catch((e) => Effect.sync(() => (failures.push(`${t.repo} key ${k.id} (${k.title}): ${e.message}`), false)))
      )
      if (!done) continue
      revoked.push(key)
      if (yield* state.exists(title.slug)) {
        const meta = yield* state.readJsonIfAny(title.slug, "meta.json", BottleMeta).pipe(Effect.orElseSucceed(() => Option.none()))
        if (Option.isSome(meta) && meta.value.deployKeys.some((m) => m.repo === t.repo && m.id === k.id)) {
          yield* state.writeJson(title.slug, "meta.json", { ...meta.value, deployKeys: meta.value.deployKeys.filter((m) => !(m.repo === t.repo && m.id === k.id)) })
        }
        yield* removeRecord(title.slug, title.upstream)
      }
    }
  }
  return { revoked, failures }
})

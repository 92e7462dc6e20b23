/**
 * Deploy keys, shared by `launch` (acquire) and `bottle stop` (revoke what is recorded).
 *
 * Guarantees: a key pair is fresh for each upstream and each launch (ssh-keygen, never reused);
 * its private half is kept 0600 in the bottle's state; each key is recorded in meta.json the
 * moment the git host has it, before anything else can fail, and stays recorded until it is
 * revoked, so even a launch killed outright leaves `bottle stop` what to revoke. Revocation
 * failures are collected, never swallowed: the caller reports them.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Option, Redacted, Ref, Schema } from "effect"
import { BottleMeta, type BottlePlan } from "../schema/BottlePlan.ts"
import { GitHost, type DeployKeyRef, type GitHostError } from "../services/GitHost.ts"
import { ProcessRunner } from "../services/ProcessRunner.ts"
import { StateStore } from "../services/StateStore.ts"

/** Where an upstream's deploy-key private half lives, relative to the bottle's state dir (0600). */
export const deployKeyFile = (upstream: string) => `git-gate/keys/${upstream}`

const GITHUB_API = "https://api.github.com"

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
  for (const u of plan.git.upstreams) {
    if (!u.deploy_key) continue
    const dk = u.deploy_key
    // The manifest requires api_url for gitea; a saved plan that lacks it is refused, never sent to GitHub.
    const apiUrl = dk.api_url ?? (dk.provider === "github" ? GITHUB_API : undefined)
    if (apiUrl === undefined) return yield* new DeployKeyFailed({ message: `the gitea deploy key for ${dk.repo} has no api_url` })
    const title = `bot-bottle ${slug}`
    const pair = yield* deployKeyPair(`${title} ${u.name}`)
    yield* state.writeFile(slug, deployKeyFile(u.name), pair.privateKey, 0o600)
    const ref = yield* gitHost.deployKey(
      { provider: dk.provider, apiUrl, repo: dk.repo, token: Redacted.make(options.env[dk.token_env] ?? ""), title, publicKey: pair.publicKey, readOnly: false },
      (r: DeployKeyRef, e: GitHostError) => Ref.update(revocationFailures, (xs) => [...xs, { key: record(r, dk.token_env), message: e.message }])
    )
    created.push(ref)
    yield* saveMeta((m) => ({ ...m, deployKeys: [...m.deployKeys, record(ref, dk.token_env)] }))
  }
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
  const recorded = yield* state.readJsonIfAny(slug, "meta.json", BottleMeta)
  if (Option.isNone(recorded)) return []
  const meta = recorded.value
  const failed: Array<{ repo: string; id: number; message: string }> = []
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

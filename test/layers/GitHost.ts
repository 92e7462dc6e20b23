/** Fake GitHost: deploy keys are numbered; revocation can be told to fail; created specs can be inspected. */
import { Effect, Layer, Ref } from "effect"
import { GitHost, GitHostError, GitHostRequestFailed, type DeployKeySpec, type ListedDeployKey } from "../../src/services/GitHost.ts"
import { Recorder } from "./Recorder.ts"

export interface FakeGitHostOptions {
  readonly failRevoke?: boolean
  /** Sees every key the program asks for (public key, title, ...). */
  readonly onCreate?: (spec: DeployKeySpec) => void
  /** What listing a repository's keys answers (default none). */
  readonly listed?: ReadonlyArray<ListedDeployKey>
}

export const layerTest = (options: FakeGitHostOptions = {}) =>
  Layer.effect(GitHost, Effect.gen(function*() {
    const rec = yield* Recorder
    const next = yield* Ref.make(100)
    const revokeDeployKey = (ref: { readonly repo: string; readonly id: number; readonly apiUrl: string }) =>
      rec.record(`release deploy-key ${ref.repo}#${ref.id}`).pipe(
        Effect.andThen(
          options.failRevoke
            ? Effect.fail(new GitHostError({ reason: new GitHostRequestFailed({ method: "DELETE", url: `${ref.apiUrl}/keys/${ref.id}`, status: 502, body: "bad gateway" }) }))
            : Effect.void
        )
      )
    const createDeployKey = (spec: DeployKeySpec) =>
      Effect.sync(() => options.onCreate?.(spec)).pipe(
        Effect.andThen(Ref.getAndUpdate(next, (n) => n + 1)),
        Effect.tap((id) => rec.record(`acquire deploy-key ${spec.repo}#${id}`)),
        Effect.map((id) => ({ provider: spec.provider, apiUrl: spec.apiUrl, repo: spec.repo, id, title: spec.title }))
      )
    return GitHost.of({
      createDeployKey,
      revokeDeployKey,
      listDeployKeys: (target) => rec.record(`list deploy-keys ${target.repo}`).pipe(Effect.as(options.listed ?? [])),
      deployKey: (spec, onRevokeFailure) =>
        rec.gate(`deploy-key ${spec.repo}`).pipe(Effect.andThen(Effect.acquireRelease(createDeployKey(spec), (ref) =>
          revokeDeployKey(ref).pipe(Effect.catch((e) => onRevokeFailure(ref, e))))))
    })
  }))

/** Fake GitHost: deploy keys are numbered; revocation can be told to fail. */
import { Effect, Layer, Ref } from "effect"
import { GitHost, GitHostError, GitHostRequestFailed } from "../../src/services/GitHost.ts"
import { Recorder } from "./Recorder.ts"

export const layerTest = (options: { readonly failRevoke?: boolean } = {}) =>
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
    const createDeployKey = (spec: { readonly provider: "github" | "gitea"; readonly apiUrl: string; readonly repo: string; readonly title: string }) =>
      Ref.getAndUpdate(next, (n) => n + 1).pipe(
        Effect.tap((id) => rec.record(`acquire deploy-key ${spec.repo}#${id}`)),
        Effect.map((id) => ({ provider: spec.provider, apiUrl: spec.apiUrl, repo: spec.repo, id, title: spec.title }))
      )
    return GitHost.of({
      createDeployKey,
      revokeDeployKey,
      deployKey: (spec, onRevokeFailure) =>
        rec.gate(`deploy-key ${spec.repo}`).pipe(Effect.andThen(Effect.acquireRelease(createDeployKey(spec), (ref) =>
          revokeDeployKey(ref).pipe(Effect.catch((e) => onRevokeFailure(ref, e))))))
    })
  }))

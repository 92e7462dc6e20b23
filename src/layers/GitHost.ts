/**
 * GitHost live layer. Deploy keys arrive with the git-gate issue; until then a manifest that
 * asks for one is refused with one clear line instead of launching a bottle that cannot push.
 */
import { Effect, Layer } from "effect"
import { GitHost, GitHostError, GitHostUnsupported } from "../services/GitHost.ts"

const unsupported = Effect.fail(
  new GitHostError({ reason: new GitHostUnsupported({ message: "deploy keys (git.upstreams[].deploy_key) are not built yet in this version of bot-bottle" }) })
)

export const layer = Layer.succeed(GitHost, GitHost.of({
  createDeployKey: () => unsupported,
  revokeDeployKey: () => unsupported,
  deployKey: () => unsupported
}))

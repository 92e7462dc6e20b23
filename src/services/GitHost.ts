/**
 * The git host's API (GitHub, Gitea) for per-bottle deploy keys: created at launch, always
 * revoked at teardown. A key that cannot be revoked is a security problem the operator must
 * see, so `revoke` fails loudly and the scoped `deployKey` records such failures.
 */
import { Context, Effect, Redacted, Schema, Scope } from "effect"

export class GitHostRequestFailed extends Schema.TaggedClass<GitHostRequestFailed>()("RequestFailed", {
  method: Schema.String,
  url: Schema.String,
  status: Schema.Number,
  body: Schema.String
}) {}
export class GitHostUnreachable extends Schema.TaggedClass<GitHostUnreachable>()("Unreachable", {
  url: Schema.String,
  message: Schema.String
}) {}
export class GitHostMissingToken extends Schema.TaggedClass<GitHostMissingToken>()("MissingToken", {
  tokenEnv: Schema.String
}) {}

export class GitHostUnsupported extends Schema.TaggedClass<GitHostUnsupported>()("Unsupported", {
  message: Schema.String
}) {}

export class GitHostError extends Schema.TaggedError<GitHostError>()("GitHostError", {
  reason: Schema.Union([GitHostRequestFailed, GitHostUnreachable, GitHostMissingToken, GitHostUnsupported])
}) {
  override get message(): string {
    const r = this.reason
    switch (r._tag) {
      case "RequestFailed":
        return `${r.method} ${r.url} answered ${r.status}: ${r.body.slice(0, 200)}`
      case "Unreachable":
        return `${r.url} unreachable: ${r.message}`
      case "MissingToken":
        return `deploy keys need an API token in $${r.tokenEnv}, which is not set`
      case "Unsupported":
        return r.message
    }
  }
}

export interface DeployKeySpec {
  readonly provider: "github" | "gitea"
  readonly apiUrl: string
  readonly repo: string
  readonly token: Redacted.Redacted<string>
  readonly title: string
  readonly publicKey: string
  readonly readOnly: boolean
}

export interface DeployKeyRef {
  readonly provider: "github" | "gitea"
  readonly apiUrl: string
  readonly repo: string
  readonly id: number
  readonly title: string
}

export class GitHost extends Context.Service<GitHost, {
  readonly createDeployKey: (spec: DeployKeySpec) => Effect.Effect<DeployKeyRef, GitHostError>
  readonly revokeDeployKey: (ref: DeployKeyRef, token: Redacted.Redacted<string>) => Effect.Effect<void, GitHostError>
  /** Scoped: created now; revoked when the scope closes. Revocation failures go to `onRevokeFailure`. */
  readonly deployKey: (
    spec: DeployKeySpec,
    onRevokeFailure: (ref: DeployKeyRef, error: GitHostError) => Effect.Effect<void>
  ) => Effect.Effect<DeployKeyRef, GitHostError, Scope.Scope>
}>()("bot-bottle/GitHost") {}

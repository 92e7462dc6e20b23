/**
 * The git host's API (GitHub, Gitea) for per-bottle deploy keys: created at launch, always
 * revoked at teardown. A key that cannot be revoked is a security problem the operator must
 * see, so `revoke` fails loudly and the scoped `deployKey` records such failures. A key the
 * host no longer has (404 on delete) counts as revoked.
 *
 * Errors name the host, the repository, the status and what to do about it.
 */
import { Context, Effect, Redacted, Schema, Scope } from "effect"

export class GitHostRequestFailed extends Schema.TaggedClass<GitHostRequestFailed>()("RequestFailed", {
  method: Schema.String,
  url: Schema.String,
  status: Schema.Number,
  body: Schema.String,
  /** What the operator can do about it (e.g. the permission a 403 says the token lacks). */
  hint: Schema.optionalKey(Schema.String)
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
        return `${r.method} ${r.url} answered ${r.status}${r.body ? `: ${r.body.slice(0, 200)}` : ""}${r.hint ? ` (${r.hint})` : ""}`
      case "Unreachable":
        return `${r.url} unreachable: ${r.message}`
      case "MissingToken":
        return `deploy keys need an API token in $${r.tokenEnv}, which is not set`
      case "Unsupported":
        return r.message
    }
  }
}

/** Which repository's keys, on which host's API. */
export interface DeployKeyTarget {
  readonly provider: "github" | "gitea"
  /** The API base: https://api.github.com, or a Gitea server's …/api/v1. */
  readonly apiUrl: string
  /** owner/name */
  readonly repo: string
}

export interface DeployKeySpec extends DeployKeyTarget {
  readonly token: Redacted.Redacted<string>
  readonly title: string
  readonly publicKey: string
  readonly readOnly: boolean
}

export interface DeployKeyRef extends DeployKeyTarget {
  readonly id: number
  readonly title: string
}

/** A key as the host lists it: `key` is the OpenSSH public key (type and base64 blob). */
export interface ListedDeployKey {
  readonly id: number
  readonly title: string
  readonly key: string
}

export class GitHost extends Context.Service<GitHost, {
  readonly createDeployKey: (spec: DeployKeySpec) => Effect.Effect<DeployKeyRef, GitHostError>
  /** Succeeds when the key is gone, including when the host never had it (404). */
  readonly revokeDeployKey: (ref: DeployKeyRef, token: Redacted.Redacted<string>) => Effect.Effect<void, GitHostError>
  /** The repository's deploy keys (all of them: the caller picks its own by title). */
  readonly listDeployKeys: (target: DeployKeyTarget, token: Redacted.Redacted<string>) => Effect.Effect<ReadonlyArray<ListedDeployKey>, GitHostError>
  /** Scoped: created now; revoked when the scope closes. Revocation failures go to `onRevokeFailure`. */
  readonly deployKey: (
    spec: DeployKeySpec,
    onRevokeFailure: (ref: DeployKeyRef, error: GitHostError) => Effect.Effect<void>
  ) => Effect.Effect<DeployKeyRef, GitHostError, Scope.Scope>
}>()("bot-bottle/GitHost") {}

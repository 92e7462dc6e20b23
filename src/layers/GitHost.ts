/**
 * GitHost live layer, on Effect's HTTP client: GitHub's deploy-key REST API
 * (`/repos/{owner}/{repo}/keys`) and Gitea's (the same paths under the server's `/api/v1`,
 * which the manifest's api_url includes).
 *
 * Guarantees: the token is sent in the Authorization header only, never logged or put in an
 * error; every request has a time limit (a host that never answers is an error, not a hang);
 * a DELETE answering 404 is a revoked key; each failure names the method, URL (host and
 * repository), status and what to do.
 */
import { Duration, Effect, Layer, Redacted, Schema } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest, HttpClientResponse } from "effect/http"
import {
  type DeployKeyRef,
  type DeployKeySpec,
  type DeployKeyTarget,
  GitHost,
  GitHostError,
  GitHostRequestFailed,
  GitHostUnreachable,
  type ListedDeployKey
} from "../services/GitHost.ts"

const TIMEOUT = Duration.seconds(15)

const KeyJson = Schema.Struct({ id: Schema.Number, title: Schema.String, key: Schema.String })

const keysUrl = (t: DeployKeyTarget) => `${t.apiUrl.replace(/\/+$/, "")}/repos/${t.repo}/keys`

/** What a status usually means for this API, and what to do. */
const hintFor = (t: DeployKeyTarget, method: string, status: number, tokenEnv?: string): string | undefined => {
  const token = tokenEnv ? `the token in $${tokenEnv}` : "the token"
  switch (status) {
    case 401:
      return `${token} is missing, expired or wrong for ${new URL(t.apiUrl).host}`
    case 403:
      return t.provider === "github"
        ? `${token} lacks the permission to manage deploy keys on ${t.repo}: a fine-grained token needs "Administration: read and write" on it, a classic one the "repo" scope`
        : `${token} lacks admin rights on ${t.repo} (Gitea deploy keys need a repository admin's token with the write:repository scope)`
    case 404:
      return method === "POST" || method === "GET" ? `no repository ${t.repo} at ${new URL(t.apiUrl).host}, or ${token} cannot see it` : undefined
    case 422:
      return "the host refused the key (already in use, or deploy keys disabled on this repository)"
    default:
      return status >= 500 ? `${new URL(t.apiUrl).host} failed; try again later` : undefined
  }
}

export const make = Effect.gen(function*() {
  const base = yield* HttpClient.HttpClient
  const authed = (token: Redacted.Redacted<string>, provider: DeployKeyTarget["provider"]) =>
    base.pipe(HttpClient.mapRequest((r) => {
      const withAuth = r.pipe(
        HttpClientRequest.acceptJson,
        HttpClientRequest.setHeader("Authorization", `${provider === "github" ? "Bearer" : "token"} ${Redacted.value(token)}`)
      )
      return provider === "github" ? HttpClientRequest.setHeader(withAuth, "X-GitHub-Api-Version", "2022-11-28") : withAuth
    }))

  /** Runs one request; statuses in `ok` pass, anything else is a RequestFailed naming it. */
  const send = <A>(
    t: DeployKeyTarget,
    token: Redacted.Redacted<string>,
    request: HttpClientRequest.HttpClientRequest,
    ok: ReadonlyArray<number>,
    read: (res: HttpClientResponse.HttpClientResponse) => Effect.Effect<A, unknown>
  ) =>
    authed(token, t.provider).execute(request).pipe(
      Effect.timeoutOrElse({ duration: TIMEOUT, orElse: () => Effect.fail(new Error(`no answer in ${Duration.toSeconds(TIMEOUT)} s`)) }),
      Effect.mapError((e) => new GitHostError({ reason: new GitHostUnreachable({ url: request.url, message: (e as Error).message ?? String(e) }) })),
      Effect.flatMap((res) =>
        ok.includes(res.status)
          ? read(res).pipe(Effect.mapError((e) => new GitHostError({ reason: new GitHostRequestFailed({ method: request.method, url: request.url, status: res.status, body: `unexpected answer: ${String((e as Error).message ?? e).slice(0, 200)}` }) })))
          : res.text.pipe(
            Effect.orElseSucceed(() => ""),
            Effect.flatMap((body) => Effect.fail(new GitHostError({ reason: new GitHostRequestFailed({ method: request.method, url: request.url, status: res.status, body: body.trim(), ...(hintFor(t, request.method, res.status) ? { hint: hintFor(t, request.method, res.status)! } : {}) }) })))
          )
      )
    )

  const createDeployKey = Effect.fn("GitHost.createDeployKey")(function*(spec: DeployKeySpec) {
    const created = yield* send(spec, spec.token,
      HttpClientRequest.post(keysUrl(spec)).pipe(HttpClientRequest.bodyJsonUnsafe({ title: spec.title, key: spec.publicKey, read_only: spec.readOnly })),
      [201, 200],
      HttpClientResponse.schemaBodyJson(KeyJson))
    return { provider: spec.provider, apiUrl: spec.apiUrl, repo: spec.repo, id: created.id, title: created.title } satisfies DeployKeyRef
  })

  const revokeDeployKey = Effect.fn("GitHost.revokeDeployKey")(function*(ref: DeployKeyRef, token: Redacted.Redacted<string>) {
    yield* send(ref, token, HttpClientRequest.delete(`${keysUrl(ref)}/${ref.id}`), [204, 200, 404], () => Effect.void)
  })

  const listDeployKeys = Effect.fn("GitHost.listDeployKeys")(function*(target: DeployKeyTarget, token: Redacted.Redacted<string>) {
    const keys: Array<ListedDeployKey> = []
    // GitHub pages by 30 (at most 100); Gitea by its own limit. Stop at an empty or short page.
    for (let page = 1; page <= 50; page++) {
      const batch = yield* send(target, token,
        HttpClientRequest.get(keysUrl(target)).pipe(HttpClientRequest.setUrlParams({ per_page: "100", limit: "50", page: String(page) })),
        [200],
        HttpClientResponse.schemaBodyJson(Schema.Array(KeyJson)))
      keys.push(...batch.map((k) => ({ id: k.id, title: k.title, key: k.key })))
      if (batch.length === 0 || batch.length < 50) break
    }
    return keys
  })

  return GitHost.of({
    createDeployKey,
    revokeDeployKey,
    listDeployKeys,
    deployKey: (spec, onRevokeFailure) =>
      Effect.acquireRelease(createDeployKey(spec), (ref) => revokeDeployKey(ref, spec.token).pipe(Effect.catch((e) => onRevokeFailure(ref, e))))
  })
})

export const layer = Layer.effect(GitHost, make).pipe(Layer.provide(FetchHttpClient.layer))

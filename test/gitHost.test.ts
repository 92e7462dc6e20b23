/**
 * The GitHost live layer against a real HTTP server speaking GitHub's and Gitea's deploy-key
 * shapes: the right paths and Authorization scheme per provider, 404 on delete is a revoked
 * key, and each failure names method, URL (host and repo), status and what to do.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, Redacted } from "effect"
import * as GitHostLive from "../src/layers/GitHost.ts"
import { GitHost } from "../src/services/GitHost.ts"

const seen: Array<{ method: string; url: string; auth: string; body: string }> = []
let answer: (method: string, url: string) => { status: number; body?: unknown } = () => ({ status: 500 })
let server: http.Server
let base = ""

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = ""
    req.on("data", (c: Buffer) => (body += c.toString()))
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization ?? "", body })
      const a = answer(req.method!, req.url!)
      res.writeHead(a.status, { "content-type": "application/json" })
      res.end(a.body === undefined ? "" : JSON.stringify(a.body))
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => void server.close())

const run = <A, E>(f: (g: GitHost["Service"]) => Effect.Effect<A, E>) =>
  Effect.runPromise(GitHost.use(f).pipe(Effect.provide(GitHostLive.layer), Effect.exit))

const token = Redacted.make("s3cret")

describe("GitHost live layer", () => {
  it("GitHub: POST /repos/{o}/{r}/keys with a Bearer token, the key's title and write access", async () => {
    seen.length = 0
    answer = () => ({ status: 201, body: { id: 5, title: "bot-bottle x app h", key: "ssh-ed25519 AAAA", read_only: false, verified: true } })
    const exit = await run((g) => g.createDeployKey({ provider: "github", apiUrl: base, repo: "acme/app", token, title: "bot-bottle x app h", publicKey: "ssh-ed25519 AAAA c", readOnly: false }))
    expect(exit._tag).toBe("Success")
    expect(seen[0]).toMatchObject({ method: "POST", url: "/repos/acme/app/keys", auth: "Bearer s3cret" })
    expect(JSON.parse(seen[0]!.body)).toEqual({ title: "bot-bottle x app h", key: "ssh-ed25519 AAAA c", read_only: false })
  })

  it("Gitea: the same paths under the api_url (…/api/v1), with `token` auth", async () => {
    seen.length = 0
    answer = () => ({ status: 201, body: { id: 6, title: "t", key: "ssh-ed25519 AAAA", read_only: true, fingerprint: "SHA256:x" } })
    await run((g) => g.createDeployKey({ provider: "gitea", apiUrl: `${base}/api/v1`, repo: "acme/app", token, title: "t", publicKey: "ssh-ed25519 AAAA", readOnly: true }))
    expect(seen[0]).toMatchObject({ method: "POST", url: "/api/v1/repos/acme/app/keys", auth: "token s3cret" })
  })

  it("DELETE answering 404 counts as revoked; 204 too", async () => {
    for (const status of [404, 204]) {
      answer = () => ({ status })
      const exit = await run((g) => g.revokeDeployKey({ provider: "github", apiUrl: base, repo: "acme/app", id: 5, title: "t" }, token))
      expect(exit._tag).toBe("Success")
    }
  })

  it("a failure names method, URL, status and what to do; the token is never in it", async () => {
    answer = () => ({ status: 500, body: { message: "Server Error" } })
    const del = await run((g) => g.revokeDeployKey({ provider: "github", apiUrl: base, repo: "acme/app", id: 5, title: "t" }, token))
    expect(del._tag).toBe("Failure")
    const msg = String(del._tag === "Failure" ? (del.cause.reasons[0] as { error?: Error }).error?.message : "")
    expect(msg).toContain(`DELETE ${base}/repos/acme/app/keys/5 answered 500`)
    expect(msg).toContain("try again later")
    answer = () => ({ status: 403, body: { message: "Resource not accessible by integration" } })
    const create = await run((g) => g.createDeployKey({ provider: "github", apiUrl: base, repo: "acme/app", token, title: "t", publicKey: "ssh-ed25519 AAAA", readOnly: false }))
    const m2 = String(create._tag === "Failure" ? (create.cause.reasons[0] as { error?: Error }).error?.message : "")
    expect(m2).toContain("answered 403")
    expect(m2).toContain("Administration: read and write")
    expect(m2).not.toContain("s3cret")
  })

  it("lists a repository's keys", async () => {
    answer = () => ({ status: 200, body: [{ id: 1, title: "a", key: "ssh-ed25519 A" }, { id: 2, title: "b", key: "ssh-ed25519 B" }] })
    const exit = await run((g) => g.listDeployKeys({ provider: "github", apiUrl: base, repo: "acme/app" }, token))
    expect(exit._tag === "Success" ? exit.value.map((k) => k.id) : []).toEqual([1, 2])
  })
})

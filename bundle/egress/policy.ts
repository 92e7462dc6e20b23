/**
 * The egress policy as a pure function: given the compiled routes and what is known about a
 * request (where its tunnel goes, what its TLS SNI and Host header say, method, path,
 * headers), allow it through exactly one route or deny it naming the rule that refused it.
 *
 * Guarantees:
 * - deny by default: no matching route, port, method or path → deny;
 * - no domain fronting: CONNECT target, TLS SNI and Host must name the same host;
 * - a tunnel or URL to a port other than the route's `ports` (default 443) is refused;
 * - credentials are injected only into TLS-protected upstream requests;
 * - a path that is not canonical (dot segments, encoded dots) is refused rather than
 *   compared, so `/allowed/../other` cannot pass a prefix check;
 * - URL and headers carrying a foreign token or a credential shape are refused (DLP); the
 *   headers egress replaces (the route's auth header and alternates) are not scanned, since
 *   their content never leaves.
 */
import type { Redacted } from "effect"
import { Redacted as R } from "effect"
import { hostMatches, type Route } from "../../src/schema/Route.ts"
import { describeFinding, type HeldToken, scanText, scanUrl } from "./dlp.ts"

export interface CompiledRoute {
  readonly index: number
  /** How the route is named in denials and the audit log: `routes[0] (api.example.com)`. */
  readonly name: string
  readonly route: Route
  readonly ports: ReadonlyArray<number>
  readonly methods: ReadonlySet<string> | undefined
  readonly paths: ReadonlyArray<string> | undefined
  readonly auth:
    | {
      readonly header: string
      readonly value: Redacted.Redacted<string>
      readonly strip: ReadonlyArray<string>
      readonly env: string
    }
    | undefined
}

export interface Policy {
  readonly routes: ReadonlyArray<CompiledRoute>
  readonly tokens: ReadonlyArray<HeldToken>
}

export interface RequestFacts {
  readonly method: string
  /** Where the upstream connection would go: the CONNECT target, else the URL's host. */
  readonly host: string
  readonly port: number
  readonly tls: boolean
  /** The raw CONNECT target host, if the request came through a tunnel. */
  readonly tunnelHost: string | undefined
  readonly sni: string | undefined
  /** Host (or :authority) header, with any port. */
  readonly hostHeader: string | undefined
  /** Path and query as sent. */
  readonly pathAndQuery: string
  readonly headers: ReadonlyArray<readonly [string, string]>
}

export type Decision =
  | { readonly _tag: "Allow"; readonly route: CompiledRoute; readonly rule: string }
  | { readonly _tag: "Deny"; readonly rule: string; readonly reason: string; readonly dlp: boolean }

export const DEFAULT_PORTS: ReadonlyArray<number> = [443]

const deny = (rule: string, reason: string, dlp = false): Decision => ({ _tag: "Deny", rule, reason, dlp })

const stripPort = (hostPort: string): string => {
  if (hostPort.startsWith("[")) return hostPort.slice(0, hostPort.indexOf("]") + 1)
  const i = hostPort.lastIndexOf(":")
  return i === -1 ? hostPort : hostPort.slice(0, i)
}

const normalizeHost = (h: string): string => stripPort(h.trim()).toLowerCase().replace(/\.$/, "")

/** `/v1` matches `/v1` and `/v1/...`, not `/v1beta`; `/v1/` matches anything under it. */
export const pathMatches = (prefix: string, path: string): boolean =>
  prefix.endsWith("/") ? path.startsWith(prefix) : path === prefix || path.startsWith(prefix + "/")

const isCanonicalPath = (path: string): boolean => {
  if (!path.startsWith("/")) return false
  if (/%2e/i.test(path)) return false
  return !path.split("/").some((seg) => seg === "." || seg === "..")
}

export interface TokenSource {
  readonly get: (env: string) => Redacted.Redacted<string> | undefined
}

/**
 * Compiles routes against the daemon's tokens. Returns the env names of auth routes whose
 * token is missing (the caller decides whether that is fatal).
 */
export const compilePolicy = (
  routes: ReadonlyArray<Route>,
  tokens: TokenSource
): { readonly policy: Policy; readonly missing: ReadonlyArray<{ env: string; host: string }> } => {
  const missing: Array<{ env: string; host: string }> = []
  const held = new Map<string, HeldToken>()
  const compiled = routes.map((route, index): CompiledRoute => {
    let auth: CompiledRoute["auth"]
    if (route.auth) {
      const token = tokens.get(route.auth.token_env)
      if (token === undefined) missing.push({ env: route.auth.token_env, host: route.host })
      else {
        held.set(route.auth.token_env, { env: route.auth.token_env, value: R.value(token) })
        const header = route.auth.header ?? "authorization"
        const scheme = route.auth.scheme
        auth = {
          header,
          value: R.make(scheme ? `${scheme} ${R.value(token)}` : R.value(token)),
          strip: [...new Set([header, ...(route.auth.alternates ?? [])])],
          env: route.auth.token_env
        }
      }
    }
    return {
      index,
      name: `routes[${index}] (${route.host})`,
      route,
      ports: route.ports ?? DEFAULT_PORTS,
      methods: route.methods ? new Set(route.methods) : undefined,
      paths: route.paths,
      auth
    }
  })
  return { policy: { routes: compiled, tokens: [...held.values()] }, missing }
}

export const decide = (policy: Policy, facts: RequestFacts): Decision => {
  const host = normalizeHost(facts.host)

  // No domain fronting: every name the request carries must be the one we connect to.
  if (facts.tunnelHost !== undefined && normalizeHost(facts.tunnelHost) !== host) {
    return deny("no-domain-fronting", `CONNECT target ${facts.tunnelHost} does not match request host ${host}`)
  }
  if (facts.sni !== undefined && normalizeHost(facts.sni) !== host) {
    return deny("no-domain-fronting", `TLS SNI ${facts.sni} does not match ${facts.tunnelHost !== undefined ? "CONNECT target" : "host"} ${host}`)
  }
  if (facts.tls && facts.sni === undefined && facts.tunnelHost !== undefined) {
    return deny("no-domain-fronting", `TLS without SNI to ${host}`)
  }
  if (facts.hostHeader !== undefined && normalizeHost(facts.hostHeader) !== host) {
    return deny("no-domain-fronting", `Host header ${facts.hostHeader} does not match ${facts.tunnelHost !== undefined ? "CONNECT target" : "URL host"} ${host}`)
  }

  const candidates = policy.routes.filter((r) => hostMatches(r.route.host, host))
  if (candidates.length === 0) return deny("default-deny", `host ${host} is not routed`)

  const q = facts.pathAndQuery.indexOf("?")
  const path = q === -1 ? facts.pathAndQuery : facts.pathAndQuery.slice(0, q)
  if (!isCanonicalPath(path)) return deny(candidates[0]!.name, `path ${JSON.stringify(path)} is not canonical (dot segments are refused)`)

  let firstRefusal: Decision | undefined
  const refuse = (d: Decision) => {
    firstRefusal ??= d
  }
  for (const r of candidates) {
    if (!r.ports.includes(facts.port)) {
      refuse(deny(r.name, `port ${facts.port} not allowed (allowed: ${r.ports.join(", ")})`))
      continue
    }
    if (r.methods && !r.methods.has(facts.method)) {
      refuse(deny(r.name, `method ${facts.method} not allowed (allowed: ${[...r.methods].join(", ")})`))
      continue
    }
    if (r.paths && !r.paths.some((p) => pathMatches(p, path))) {
      refuse(deny(r.name, `path ${path} not allowed (allowed: ${r.paths.join(", ")})`))
      continue
    }
    if (r.auth && !facts.tls) return deny(r.name, "credentials are injected over TLS only; use https")

    // DLP on what is already known: URL and headers.
    const allowedEnv = r.auth?.env
    const inUrl = scanUrl(facts.pathAndQuery, policy.tokens, allowedEnv)
    if (inUrl) return deny("dlp", `URL carries ${describeFinding(inUrl)}`, true)
    const skip = r.auth?.strip
    for (const [name, value] of facts.headers) {
      const lower = name.toLowerCase()
      if (lower === "proxy-authorization" || (skip && skip.includes(lower))) continue
      const inHeader = scanText(value, policy.tokens, allowedEnv)
      if (inHeader) return deny("dlp", `header ${lower} carries ${describeFinding(inHeader)}`, true)
    }
    return { _tag: "Allow", route: r, rule: r.name }
  }
  return firstRefusal!
}

/**
 * The egress policy as a pure function: given the compiled routes and what is known about a
 * request (where its tunnel goes, what its TLS SNI and Host header say, method, path,
 * headers), allow it through exactly one route or deny it naming the rule that refused it.
 *
 * Guarantees:
 * - deny by default: no matching route, port, method or path → deny;
 * - no domain fronting: CONNECT target, TLS SNI, every Host and :authority header (and, in
 *   absolute form, the URL's host as the forwarder parses it) must name the same host; a port
 *   they name must be the one connected to; a second Host or :authority is refused;
 * - a tunnel or URL to a port other than the route's `ports` (default 443) is refused;
 * - credentials are injected only into TLS-protected upstream requests;
 * - the path checked is the path forwarded: `forwardedPath` is what mockttp's passthrough will
 *   send (it re-parses the URL), and a request whose raw path differs from it (backslashes,
 *   dot segments, `?`/`#` tricks in absolute form) or that is not canonical (dot segments,
 *   encoded dots, backslashes or encoded slashes that an upstream may treat as separators) is
 *   refused rather than compared, so `/allowed/..\other` cannot pass a prefix check;
 * - URL and headers carrying a foreign token (or its base64/hex form) or a credential shape
 *   are refused (DLP), as sent and percent-decoded; headers as every name and value
 *   concatenated in order (a token as a header name, or split between a name and its value)
 *   and as all values concatenated (split across headers); the headers egress removes (the
 *   route's auth header and alternates, Proxy-Authorization) are not scanned, since their
 *   content never leaves.
 */
import type { Redacted } from "effect"
import { Redacted as R } from "effect"
import { hostMatches, type Route } from "../../src/schema/Route.ts"
import type { AskHooks } from "./ask.ts"
import { describeFinding, type HeldToken, scanDecoded, scanSetFor, scanUrl } from "./dlp.ts"

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
  /** `on_unrouted: ask` (ask.ts): unrouted hosts are queued for approval; approved ones are routes here. */
  readonly ask?: AskHooks | undefined
  /** The tokens as held: what a response may echo (redaction). */
  readonly tokens: ReadonlyArray<HeldToken>
  /** What DLP looks for: the tokens plus their base64/hex forms (precomputed once per policy). */
  readonly needles: ReadonlyArray<HeldToken>
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
  /** Every Host and :authority header value, in order, with any port. */
  readonly hostHeaders: ReadonlyArray<readonly [name: string, value: string]>
  /** Absolute-form requests: the URL's host[:port] as the forwarder parses it. */
  readonly urlHost: string | undefined
  /** Path and query as sent. */
  readonly pathAndQuery: string
  /** Path and query as they will be forwarded upstream (what the passthrough will send). */
  readonly forwardedPath: string
  readonly headers: ReadonlyArray<readonly [string, string]>
}

export type Decision =
  | { readonly _tag: "Allow"; readonly route: CompiledRoute; readonly rule: string }
  | { readonly _tag: "Deny"; readonly rule: string; readonly reason: string; readonly dlp: boolean; /** Refused for load (admission.ts): 503, not 403. */ readonly busy?: true }

export const DEFAULT_PORTS: ReadonlyArray<number> = [443]

const deny = (rule: string, reason: string, dlp = false): Decision => ({ _tag: "Deny", rule, reason, dlp })

const stripPort = (hostPort: string): string => {
  if (hostPort.startsWith("[")) return hostPort.slice(0, hostPort.indexOf("]") + 1)
  const i = hostPort.lastIndexOf(":")
  return i === -1 ? hostPort : hostPort.slice(0, i)
}

const normalizeHost = (h: string): string => stripPort(h.trim()).toLowerCase().replace(/\.$/, "")

/** The explicit port in `host:port` (undefined when none), NaN when not a number. */
const portOf = (hostPort: string): number | undefined => {
  const h = hostPort.trim()
  const close = h.startsWith("[") ? h.indexOf("]") : -1
  const i = h.lastIndexOf(":")
  if (i === -1 || i < close) return undefined
  const p = h.slice(i + 1)
  return /^\d{1,5}$/.test(p) ? Number(p) : Number.NaN
}

/** `/v1` matches `/v1` and `/v1/...`, not `/v1beta`; `/v1/` matches anything under it. */
export const pathMatches = (prefix: string, path: string): boolean =>
  prefix.endsWith("/") ? path.startsWith(prefix) : path === prefix || path.startsWith(prefix + "/")

const pathOf = (pathAndQuery: string): string => {
  const q = pathAndQuery.indexOf("?")
  return q === -1 ? pathAndQuery : pathAndQuery.slice(0, q)
}

/** Dot segments, once any slash an upstream might honour (`\\`, `%2f`, `%5c`) is a slash. */
const DOT_SEGMENT = /(?:^|\/|\\|%2f|%5c)\.{1,2}(?:$|\/|\\|%2f|%5c)/i

/**
 * Canonical: absolute, no backslash (WHATWG and url.parse turn it into `/`), no encoded dot
 * or backslash, no dot segment (also across encoded slashes).
 */
const isCanonicalPath = (path: string): boolean =>
  path.startsWith("/") && !path.includes("\\") && !/%2e|%5c/i.test(path) && !DOT_SEGMENT.test(path)

/** Characters a URL parser may percent-encode on the way (never reinterpret). */
const ENCODABLE = /[^A-Za-z0-9\-._~!$&()*+,;=:@/%]/g
const encodeLikeParsers = (path: string): string =>
  path.replace(ENCODABLE, (c) => {
    const code = c.charCodeAt(0)
    return code < 0x80 ? `%${code < 16 ? "0" : ""}${code.toString(16).toUpperCase()}` : encodeURIComponent(c)
  })

/** Same path, up to percent-encoding of characters the parsers escape. */
const samePath = (raw: string, forwarded: string): boolean =>
  raw === forwarded || encodeLikeParsers(raw) === encodeLikeParsers(forwarded)

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
  const heldTokens = [...held.values()]
  return { policy: { routes: compiled, tokens: heldTokens, needles: scanSetFor(heldTokens) }, missing }
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
  const against = facts.tunnelHost !== undefined ? "CONNECT target" : "URL host"
  let hosts = 0
  let authorities = 0
  for (const [name, value] of facts.hostHeaders) {
    if (name === "host") hosts++
    else authorities++
    if (hosts > 1 || authorities > 1) return deny("no-domain-fronting", `more than one ${name} header`)
    if (normalizeHost(value) !== host) return deny("no-domain-fronting", `${name === "host" ? "Host" : name} header ${value} does not match ${against} ${host}`)
    const port = portOf(value)
    if (port !== undefined && port !== facts.port) return deny("no-domain-fronting", `${name === "host" ? "Host" : name} header ${value} names another port than ${facts.port}`)
  }
  if (facts.urlHost !== undefined && (normalizeHost(facts.urlHost) !== host || (portOf(facts.urlHost) ?? facts.port) !== facts.port)) {
    return deny("no-domain-fronting", `URL host ${facts.urlHost} does not match the destination ${host}:${facts.port}`)
  }

  const candidates = policy.routes.filter((r) => hostMatches(r.route.host, host))
  if (candidates.length === 0) return deny("default-deny", `host ${host} is not routed`)

  // Decide on the path that will be sent, and refuse when it is not the path the agent wrote
  // (a parser rewrote it) or when an upstream could still rewrite it (dot segments, `\\`).
  const raw = pathOf(facts.pathAndQuery)
  const path = pathOf(facts.forwardedPath)
  if (!isCanonicalPath(raw) || (path !== raw && (!isCanonicalPath(path) || !samePath(raw, path)))) {
    return deny(candidates[0]!.name, `path ${JSON.stringify(raw)} is not canonical (dot segments, backslashes and encoded dots or slashes are refused)`)
  }

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
    const needles = policy.needles
    const inUrl = scanUrl(facts.pathAndQuery, needles, allowedEnv) ?? (facts.forwardedPath === facts.pathAndQuery ? undefined : scanUrl(facts.forwardedPath, needles, allowedEnv))
    if (inUrl) return deny("dlp", `URL carries ${describeFinding(inUrl)}`, true)
    // Two scans: every forwarded header's name and value joined in order as sent (a token sent
    // as a name, or split between a name and its value), and every value joined (split across
    // two headers); each also percent-decoded (cookies, form-like values). Only on a finding,
    // a second pass names the header.
    const skip = r.auth?.strip
    const forwarded = (lower: string) => lower !== "proxy-authorization" && !(skip && skip.includes(lower))
    let joined = ""
    let values = ""
    for (const [name, value] of facts.headers) {
      if (!forwarded(name.toLowerCase())) continue
      joined += name + value
      values += value
    }
    const inHeaders = scanDecoded(joined, needles, allowedEnv) ?? scanDecoded(values, needles, allowedEnv)
    if (inHeaders) {
      for (const [name, value] of facts.headers) {
        const lower = name.toLowerCase()
        if (!forwarded(lower)) continue
        const inName = scanDecoded(name, needles, allowedEnv)
        if (inName) return deny("dlp", `a header name carries ${describeFinding(inName)}`, true)
        const inHeader = scanDecoded(value, needles, allowedEnv)
        if (inHeader) return deny("dlp", `header ${lower} carries ${describeFinding(inHeader)}`, true)
      }
      return deny("dlp", `headers (split across several, or across a name and its value) carry ${describeFinding(inHeaders)}`, true)
    }
    return { _tag: "Allow", route: r, rule: r.name }
  }
  return firstRefusal!
}

/**
 * Egress routes: the allowlist the egress daemon enforces. The same Schema validates a
 * manifest's `bottles.<name>.egress.routes` and the daemon's `routes.yaml`, so a route that
 * passes `bottle plan` is a route the daemon accepts.
 *
 * Guarantees: a host is an exact DNS name or `*.suffix` (never an IP, never a bare `*`);
 * tokens are named by env var only (`token_env`), never held here.
 */
import { Schema } from "effect"

const hostLabel = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
// At least two labels, an optional leading "*.", and a last label with a letter in it: a
// numeric last label is an IPv4 address in some spelling (`127.1`, `0177.0.0.1`,
// `169.254.43518`, `0x7f.0x1`), which resolvers happily turn into one. One pattern, with the u flag, so
// `bottle schema` exports it for editors too.
const hostPattern = new RegExp(`^(?:\\*\\.)?(?:${hostLabel}\\.)+(?=[a-z0-9-]*[a-z])(?!0x[0-9a-f]*$)${hostLabel}$`, "u")

/** `api.example.com` or `*.example.com`; lower case; no IPs, no ports, no bare wildcard. */
export const RouteHost = Schema.String.pipe(
  Schema.check(
    Schema.isPattern(hostPattern, {
      message: 'expected a lower-case DNS host name like "api.example.com" or "*.example.com" (no IP, port, scheme or path)'
    })
  ),
  Schema.annotate({ description: "Exact host name, or *.suffix for any subdomain of suffix" })
)

export const HttpMethod = Schema.Literals(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
export type HttpMethod = typeof HttpMethod.Type

/** Env var names: what a token is referenced by. */
export const EnvVarName = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[A-Za-z_][A-Za-z0-9_]*$/u, { message: "expected an environment variable name like GITHUB_TOKEN" }))
)

const HeaderName = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[a-z0-9!#$%&'*+.^_`|~-]+$/u, { message: "expected a lower-case HTTP header name like authorization" }))
)

export const PathPrefix = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^\/[^\s?#]*$/u, { message: "expected a path prefix starting with / (no query or fragment)" }))
)

export const RouteAuth = Schema.Struct({
  header: Schema.optionalKey(HeaderName).annotate({ description: "Header carrying the credential (default authorization)" }),
  scheme: Schema.optionalKey(Schema.String).annotate({ description: 'Prefix before the token, e.g. "Bearer"' }),
  token_env: EnvVarName.annotate({ description: "Name of the env var (on the host / in the bundle) holding the real token" }),
  alternates: Schema.optionalKey(Schema.Array(HeaderName)).annotate({
    description: "Other headers an agent may put a credential in (e.g. x-api-key); stripped too"
  })
})
export type RouteAuth = typeof RouteAuth.Type

/** What a route means to the agent side: which placeholder credential the agent is given. */
export const RouteRole = Schema.Literals(["claude_code_oauth", "anthropic_api_key"])
export type RouteRole = typeof RouteRole.Type

export const Route = Schema.Struct({
  host: RouteHost,
  ports: Schema.optionalKey(Schema.Array(Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 65535 }))))).annotate({
    description: "Ports CONNECT may reach on this host (default [443])"
  }),
  paths: Schema.optionalKey(Schema.Array(PathPrefix)).annotate({ description: "Allowed path prefixes (default: any)" }),
  methods: Schema.optionalKey(Schema.Array(HttpMethod)).annotate({ description: "Allowed methods (default: any)" }),
  auth: Schema.optionalKey(RouteAuth),
  roles: Schema.optionalKey(Schema.Array(RouteRole)),
  allow_private_ips: Schema.optionalKey(Schema.Boolean).annotate({
    description:
      "Let this host resolve to a loopback, private (RFC 1918), carrier-grade NAT or unique-local address (an internal service). Default false: such a name is refused at connect time. Link-local (cloud metadata), multicast and unspecified addresses are refused always."
  })
})
export type Route = typeof Route.Type

/** What egress does with a request to a host no route names: refuse it (default), or queue it for approval. */
export const OnUnrouted = Schema.Literals(["deny", "ask"]).annotate({
  description: "A request to a host no route names: deny (default), or ask: refused with a 403 naming a pending approval request (`bottle approve ID --route once|session`)"
})
export type OnUnrouted = typeof OnUnrouted.Type

/** The daemon's routes.yaml: `routes: [...]`, and `on_unrouted` (default deny). */
export const RoutesFile = Schema.Struct({
  routes: Schema.Array(Route),
  on_unrouted: Schema.optionalKey(OnUnrouted)
})
export type RoutesFile = typeof RoutesFile.Type

/** Does `host` (lower-cased, no port) match a route host pattern? */
export const hostMatches = (pattern: string, host: string): boolean =>
  pattern.startsWith("*.") ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern

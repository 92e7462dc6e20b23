/**
 * Fixed facts about the sidecar bundle every backend relies on: its daemons' ports (the bundle
 * protocol's table, src/schema/BundleProtocol.ts, says which daemon has which, and where each
 * one's state is mounted) and the per-bottle subnet pool.
 */
export const EGRESS_PORT = 3128
export const GIT_GATE_PORT = 9418
export const SUPERVISE_PORT = 8765

/** Subnet pool for per-bottle internal networks: 10.213.<index>.0/24. */
export const SUBNET_POOL = "subnet"
export const SUBNET_POOL_SIZE = 256
export const subnetFor = (index: number) => ({
  subnet: `10.213.${index}.0/24`,
  /** Dynamic addresses (the agent) come from the upper half; the bundle's fixed .2 is outside it. */
  ipRange: `10.213.${index}.128/25`,
  bundleIp: `10.213.${index}.2`
})

/** The supervise daemon's MCP endpoint as the agent reaches it (its env's MCP_SUPERVISE_URL). */
export const SUPERVISE_URL_VARIABLE = "MCP_SUPERVISE_URL"
export const superviseUrl = (bundleIp: string): string => `http://${bundleIp}:${SUPERVISE_PORT}/mcp`

/** The variables that point the agent's tools at the egress proxy. */
export const PROXY_VARIABLES = ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] as const

/** Each of PROXY_VARIABLES set to the egress proxy at `bundleIp`. */
export const proxyEnv = (bundleIp: string): Record<(typeof PROXY_VARIABLES)[number], string> => {
  const proxy = `http://${bundleIp}:${EGRESS_PORT}`
  return { HTTPS_PROXY: proxy, HTTP_PROXY: proxy, https_proxy: proxy, http_proxy: proxy }
}

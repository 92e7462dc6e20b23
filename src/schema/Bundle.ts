/**
 * Fixed facts about the sidecar bundle every backend relies on: its ports and where its
 * config lives inside the bundle container.
 */
export const EGRESS_PORT = 3128
export const GIT_GATE_PORT = 9418
export const SUPERVISE_PORT = 8765

/** Inside the bundle: the bottle's egress dir (routes.yaml, ca.pem, ca-key.pem, audit.log). */
export const BUNDLE_EGRESS_DIR = "/run/bottle/egress"

/** Subnet pool for per-bottle internal networks: 10.213.<index>.0/24. */
export const SUBNET_POOL = "subnet"
export const SUBNET_POOL_SIZE = 256
export const subnetFor = (index: number) => ({
  subnet: `10.213.${index}.0/24`,
  /** Dynamic addresses (the agent) come from the upper half; the bundle's fixed .2 is outside it. */
  ipRange: `10.213.${index}.128/25`,
  bundleIp: `10.213.${index}.2`
})

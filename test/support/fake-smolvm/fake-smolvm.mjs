/**
 * A faithful fake of the `smolvm` CLI, for tests only (test/support/fake-smolvm/smolvm is put on
 * PATH by the tests; nothing in src/ knows it exists). No real microVM boots on the machines
 * this project is developed and tested on (DESIGN.md, "This machine and microVMs").
 *
 * Pinned against smol-machines/smolvm at tag v1.9.3 (Cargo version 1.9.3; the flags used here
 * are the same at v1.9.0):
 *   src/main.rs            `smolvm --version` (clap `#[command(version)]`: "smolvm 1.9.3")
 *   src/cli/pack.rs        PackCreateCmd: `pack create --image|-I REF -o|--output OUT`; OUT
 *                          ending in .smolmachine is refused (QA BUG-139 message); the sidecar
 *                          artifact is OUT.smolmachine; "Packed: …" / "Assets: …" output
 *   src/cli/machine.rs     CreateCmd (`--name|-n`, `--from` (conflicts with --image,
 *                          --smolfile), `--allow-cidr` (implies --net), `--label K=V`,
 *                          `-e|--env K=V`, `--cpus`, `--mem` MiB, `--dns`, `-w`), StartCmd,
 *                          StopCmd, DeleteCmd (`--name`, `-f|--force`), ExecCmd (`--name`,
 *                          `-e`, `-w`, trailing COMMAND; exits with the command's code),
 *                          CpCmd (`SRC DST`, `machine:path` on one side), LsCmd (`--json`)
 *   src/cli/vm_common.rs   machine_status_json: the `ls --json` object (name, state, cpus,
 *                          memory_mib, pid, …, labels, network); `[]` when there are none
 *   src/config.rs          RecordState display: created|running|stopped|failed|unreachable|frozen
 *
 * What is real here: a machine is a real Docker container made from the image the artifact
 * names, which `pack create` really pulled from the registry it was given (so the image
 * pipeline is proven end to end); its network reaches only its `--allow-cidr` addresses,
 * enforced with iptables in the container's network namespace from the host (root needed); env
 * given at create reaches PID 1 only (exec does not inherit it); exec is not ready for a few
 * polls after start; files of /home/node are owned by another uid and /tmp is 0755 after start,
 * as pack's ownership remap leaves them.
 *
 * Fake-only choices (marked where they are made): the VM's network is the Docker network whose
 * subnet holds the first allowed address (on Linux the real VM is NATed by the host, which
 * reaches that bridge); the artifact is a JSON descriptor of the pulled image, not a disk; exec
 * runs as root, as smolvm's guest agent does.
 *
 * Switches (environment), for the known upstream bugs:
 *   FAKE_SMOLVM_VERSION=1.8.3          report that version (a too-old smolvm)
 *   FAKE_SMOLVM_BUG=drop-allow-cidr    `--allow-cidr` beside `--from` silently dropped (pre-1.8)
 *   FAKE_SMOLVM_BUG=open-cached-net    a machine from an artifact booted before has an open
 *                                      network (pre-1.9 image-cache bug)
 * FAKE_SMOLVM_HOME: where machine records live (default $TMPDIR/fake-smolvm-<uid>).
 * FAKE_SMOLVM_NOT_READY: how many execs fail after start (default 3).
 */
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const VERSION = process.env.FAKE_SMOLVM_VERSION || "1.9.3"
const BUG = process.env.FAKE_SMOLVM_BUG || ""
const HOME = process.env.FAKE_SMOLVM_HOME || path.join(os.tmpdir(), `fake-smolvm-${process.getuid?.() ?? 0}`)
const NOT_READY = Number(process.env.FAKE_SMOLVM_NOT_READY ?? "3")
const LABEL = "fake-smolvm.machine"

const die = (message, code = 1) => {
  process.stderr.write(`Error: ${message}\n`)
  process.exit(code)
}
const docker = (args, opts = {}) => spawnSync("docker", args, { encoding: "utf8", maxBuffer: 64 << 20, ...opts })
const dockerOk = (args, what) => {
  const r = docker(args)
  if (r.status !== 0) die(`${what}: ${(r.stderr || r.stdout).trim()}`)
  return r.stdout
}
const machinesDir = path.join(HOME, "machines")
const recordPath = (name) => path.join(machinesDir, `${name}.json`)
const readRecord = (name) => {
  try {
    return JSON.parse(fs.readFileSync(recordPath(name), "utf8"))
  } catch {
    return undefined
  }
}
const writeRecord = (r) => {
  fs.mkdirSync(machinesDir, { recursive: true })
  const tmp = `${recordPath(r.name)}.${process.pid}`
  fs.writeFileSync(tmp, JSON.stringify(r))
  fs.renameSync(tmp, recordPath(r.name))
}
const containerOf = (name) => `fake-smolvm-${name}`

/** clap-style flag parsing for the subset: repeated flags collect, `--` ends flags. */
const parse = (argv, spec) => {
  const out = { _: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === "--") {
      out._.push(...argv.slice(i + 1))
      break
    }
    const eq = a.startsWith("--") ? a.indexOf("=") : -1
    const flag = eq > 0 ? a.slice(0, eq) : a
    const def = spec[flag]
    if (def === undefined) {
      if (a.startsWith("-") && a !== "-") die(`unexpected argument '${a}' found`, 2)
      out._.push(a)
      if (spec.$trailing) {
        out._.push(...argv.slice(i + 1))
        break
      }
      continue
    }
    if (def.bool) {
      out[def.key] = true
      continue
    }
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i]
    if (value === undefined) die(`a value is required for '${flag} <${def.key.toUpperCase()}>' but none was supplied`, 2)
    if (def.many) (out[def.key] ??= []).push(value)
    else out[def.key] = value
  }
  return out
}

const ipToInt = (ip) => ip.split(".").reduce((n, o) => (n << 8) + Number(o), 0) >>> 0
const inCidr = (ip, cidr) => {
  const [base, bits] = cidr.split("/")
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0
  return (ipToInt(ip) & mask) === (ipToInt(base) & mask)
}

/** Fake-only: the Docker network the VM's traffic would come out on (see the header). */
const networkFor = (allow) => {
  const first = allow[0]?.split("/")[0]
  if (!first) return "bridge"
  const nets = docker(["network", "ls", "--format", "{{.Name}}"]).stdout.split("\n").filter(Boolean)
  if (nets.length === 0) return "bridge"
  const inspected = JSON.parse(docker(["network", "inspect", ...nets]).stdout || "[]")
  for (const n of inspected) for (const c of n.IPAM?.Config ?? []) if (c.Subnet && !c.Subnet.includes(":") && inCidr(first, c.Subnet)) return n.Name
  return "bridge"
}

const stateOf = (rec) => {
  const r = docker(["inspect", "--format", "{{.State.Status}} {{.State.Pid}}", containerOf(rec.name)])
  if (r.status !== 0) return { state: "failed", pid: null }
  const [status, pid] = r.stdout.trim().split(" ")
  const state = status === "running" ? "running" : status === "created" ? "created" : status === "exited" ? "stopped" : "failed"
  return { state, pid: state === "running" ? Number(pid) : null }
}

const version = () => console.log(`smolvm ${VERSION}`)

const packCreate = (argv) => {
  const a = parse(argv, { "--image": { key: "image" }, "-I": { key: "image" }, "-o": { key: "output" }, "--output": { key: "output" }, "--cpus": { key: "cpus" }, "--mem": { key: "mem" } })
  if (!a.output) die("the following required arguments were not provided:\n  --output <PATH>", 2)
  if (!a.image) die("the following required arguments were not provided:\n  --image <IMAGE>", 2)
  const out = path.resolve(a.output)
  if (/\.smolmachine$/i.test(out)) {
    die(`pack create: --output names the executable stub, not the .smolmachine sidecar (which is created automatically as '<output>.smolmachine'). Use --output ${out.replace(/\.smolmachine$/i, "")} instead.`)
  }
  // Stopped half-way (the caller was interrupted), the pulled reference is untagged: it names a
  // registry that is about to be gone. (Signals wait for the running docker call to return.)
  for (const sig of ["SIGTERM", "SIGINT"]) {
    process.on(sig, () => {
      docker(["rmi", a.image])
      process.exit(128 + (sig === "SIGTERM" ? 15 : 2))
    })
  }
  // A real pull from the registry named by the reference (plain HTTP for local registries).
  dockerOk(["pull", "-q", a.image], `pull ${a.image}`)
  const id = dockerOk(["image", "inspect", "--format", "{{.Id}}", a.image], "inspect").trim()
  const stored = `fake-smolvm/pack:${id.replace(/^sha256:/, "").slice(0, 24)}`
  dockerOk(["tag", a.image, stored], "tag")
  docker(["rmi", a.image])
  const artifact = { format: "fake-smolmachine/1", image: a.image, imageId: id, stored, cpus: Number(a.cpus ?? 1), mem: Number(a.mem ?? 1024), packedAt: new Date().toISOString() }
  fs.writeFileSync(`${out}.smolmachine`, JSON.stringify(artifact, null, 2) + "\n")
  fs.writeFileSync(out, `#!/bin/sh\nexec smolvm pack run --sidecar "$0.smolmachine" "$@"\n`, { mode: 0o755 })
  const size = fs.statSync(`${out}.smolmachine`).size
  console.log(`Packed: ${out} (stub: 0KB, total: ${Math.ceil(size / 1024)}KB)`)
  console.log(`Assets: ${out}.smolmachine (${Math.ceil(size / 1024)}KB compressed)`)
  console.log(`\nRun with: ${out}`)
  console.log("Note: Keep the .smolmachine file alongside the binary")
}

const machineCreate = (argv) => {
  const a = parse(argv, {
    "--name": { key: "name" }, "-n": { key: "name" }, "--from": { key: "from" }, "--image": { key: "image" }, "-I": { key: "image" },
    "--smolfile": { key: "smolfile" }, "--allow-cidr": { key: "allow", many: true }, "--label": { key: "labels", many: true },
    "-e": { key: "env", many: true }, "--env": { key: "env", many: true }, "--cpus": { key: "cpus" }, "--mem": { key: "mem" },
    "--dns": { key: "dns" }, "-w": { key: "workdir" }, "--workdir": { key: "workdir" }, "--net": { key: "net", bool: true }
  })
  if (!a.name) die("a machine name is required (--name)", 2)
  if (a.from && (a.image || a.smolfile)) die("the argument '--from <PATH>' cannot be used with '--image <IMAGE>' or '--smolfile <PATH>'", 2)
  if (!a.from) die("fake smolvm: only `machine create --from <artifact>` is implemented", 2)
  if (readRecord(a.name)) die(`machine '${a.name}' already exists`)
  let artifact
  try {
    artifact = JSON.parse(fs.readFileSync(a.from, "utf8"))
  } catch (e) {
    die(`failed to read .smolmachine artifact ${a.from}: ${e.message}`)
  }
  if (artifact.format !== "fake-smolmachine/1") die(`${a.from} is not a .smolmachine artifact`)
  for (const c of a.allow ?? []) if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(c)) die(`invalid value '${c}' for '--allow-cidr <CIDR>'`, 2)
  const seen = path.join(HOME, "booted", createHash("sha256").update(fs.readFileSync(a.from)).digest("hex"))
  let allow = a.allow ?? []
  // The upstream bugs, on request.
  let open = false
  if (BUG === "drop-allow-cidr" && a.from) open = true
  if (BUG === "open-cached-net" && fs.existsSync(seen)) open = true
  const net = a.net || allow.length > 0
  const labels = Object.fromEntries((a.labels ?? []).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]))
  const env = a.env ?? []
  for (const e of env) if (!e.includes("=")) die(`invalid env '${e}' (expected KEY=VALUE)`, 2)
  const args = ["create", "--name", containerOf(a.name), "--label", `${LABEL}=${a.name}`, "--label", `fake-smolvm.home=${HOME}`,
    "--network", net ? networkFor(allow) : "none", "--hostname", a.name.slice(0, 63),
    "--sysctl", "net.ipv6.conf.all.disable_ipv6=1", "--sysctl", "net.ipv6.conf.default.disable_ipv6=1",
    ...(a.dns ? ["--dns", a.dns] : []), ...(a.cpus ? ["--cpus", a.cpus] : []), ...(a.mem ? ["--memory", `${a.mem}m`] : []),
    "--user", "0", "--entrypoint", "env", artifact.stored,
    // Create-time env reaches PID 1 only: it is in PID 1's argv (env K=V sleep), not the container's config.
    ...env, "sleep", "infinity"]
  dockerOk(args, "create machine")
  writeRecord({ name: a.name, from: path.resolve(a.from), seen, allow, open, net, labels, env: env.length, cpus: Number(a.cpus ?? 4), mem: Number(a.mem ?? 8192), workdir: a.workdir ?? null, image: artifact.image, created_at: new Date().toISOString(), notReady: 0 })
}

/** The allowlist, in the machine's own network namespace, from the host. */
const enforce = (pid, allow) => {
  const ns = (args) => {
    const r = spawnSync("nsenter", ["-t", String(pid), "-n", "iptables", "-w", ...args], { encoding: "utf8" })
    if (r.status !== 0) throw new Error(`iptables ${args.join(" ")}: ${r.stderr.trim()}`)
  }
  ns(["-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT"])
  ns(["-A", "OUTPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"])
  for (const c of allow) ns(["-A", "OUTPUT", "-d", c, "-j", "ACCEPT"])
  ns(["-A", "OUTPUT", "-j", "DROP"])
}

/**
 * Fake-only: the container stands on the Docker network of its first allowed address (see the
 * header). A stopped machine's bottle gets that network made again at resume (same name and
 * subnet, a new id), and Docker will not start a container on a network that is gone: the
 * container leaves the gone one and joins the one there now. (The real VM is NATed by the host
 * and needs none of this; its allowlist is the same address either way.)
 */
const reattach = (rec) => {
  const c = containerOf(rec.name)
  const attached = JSON.parse(docker(["inspect", "--format", "{{json .NetworkSettings.Networks}}", c]).stdout || "{}") ?? {}
  const live = new Set(docker(["network", "ls", "--no-trunc", "--format", "{{.ID}}"]).stdout.split("\n").filter(Boolean))
  const want = networkFor(rec.allow)
  for (const [name, n] of Object.entries(attached)) {
    if (!live.has(n.NetworkID) || name !== want) docker(["network", "disconnect", "-f", name, c])
  }
  const now = JSON.parse(docker(["inspect", "--format", "{{json .NetworkSettings.Networks}}", c]).stdout || "{}") ?? {}
  if (!(want in now)) dockerOk(["network", "connect", want, c], `attach machine to ${want}`)
}

const machineStart = (argv) => {
  const a = parse(argv, { "--name": { key: "name" }, "-n": { key: "name" } })
  const rec = readRecord(a.name ?? "default")
  if (!rec) die(`machine '${a.name ?? "default"}' not found`)
  if (rec.net) reattach(rec)
  dockerOk(["start", containerOf(rec.name)], "start machine")
  const { pid } = stateOf(rec)
  if (!pid) die("machine exited during boot")
  try {
    if (rec.net && !rec.open) enforce(pid, rec.allow)
    // Pack remaps file ownership to the host user.
    const uid = process.getuid?.() || 501
    dockerOk(["exec", "-u", "0", containerOf(rec.name), "sh", "-c", `chown -R ${uid}:${uid} /home/node 2>/dev/null || true; chmod 0755 /tmp /var/tmp`], "boot")
  } catch (e) {
    docker(["kill", containerOf(rec.name)])
    die(`machine start: ${e.message}`)
  }
  fs.mkdirSync(path.dirname(rec.seen), { recursive: true })
  fs.writeFileSync(rec.seen, "")
  writeRecord({ ...rec, notReady: NOT_READY })
  console.log(`Started machine '${rec.name}'`)
}

const machineStop = (argv) => {
  const a = parse(argv, { "--name": { key: "name" }, "-n": { key: "name" } })
  const rec = readRecord(a.name ?? "default")
  if (!rec) die(`machine '${a.name ?? "default"}' not found`)
  docker(["stop", "-t", "1", containerOf(rec.name)])
  console.log(`Stopped machine '${rec.name}'`)
}

const machineDelete = (argv) => {
  const a = parse(argv, { "--name": { key: "name" }, "-n": { key: "name" }, "-f": { key: "force", bool: true }, "--force": { key: "force", bool: true } })
  if (!a.name) die("the following required arguments were not provided:\n  --name <NAME>", 2)
  const rec = readRecord(a.name)
  if (!rec) die(`machine '${a.name}' not found`)
  if (!a.force && !process.stdin.isTTY) die("refusing to delete without confirmation (use --force)")
  const r = docker(["rm", "-f", containerOf(rec.name)])
  if (r.status !== 0 && !/No such container/.test(r.stderr)) die(`delete machine: ${r.stderr.trim()}`)
  fs.rmSync(recordPath(rec.name), { force: true })
  console.log(`Deleted machine '${rec.name}'`)
}

const machineExec = (argv) => {
  const a = parse(argv, { "--name": { key: "name" }, "-e": { key: "env", many: true }, "--env": { key: "env", many: true }, "-w": { key: "workdir" }, "--workdir": { key: "workdir" }, "-i": { key: "interactive", bool: true }, "--interactive": { key: "interactive", bool: true }, "-t": { key: "tty", bool: true }, "--tty": { key: "tty", bool: true }, $trailing: true })
  if (a._.length === 0) die("the following required arguments were not provided:\n  <COMMAND>...", 2)
  const rec = readRecord(a.name ?? "default")
  if (!rec) die(`machine '${a.name ?? "default"}' not found`)
  const { state } = stateOf(rec)
  if (state !== "running") die(`machine '${rec.name}' is not running (state: ${state})`)
  if (rec.notReady > 0) {
    writeRecord({ ...rec, notReady: rec.notReady - 1 })
    die("failed to connect to the guest agent: connection refused (the machine may still be booting)")
  }
  const args = ["exec", ...(a.interactive ? ["-i"] : []), ...(a.tty ? ["-t"] : []), "-u", "0",
    ...(a.workdir ?? rec.workdir ? ["-w", a.workdir ?? rec.workdir] : []), ...(a.env ?? []).flatMap((e) => ["-e", e]), containerOf(rec.name), ...a._]
  const r = spawnSync("docker", args, { stdio: "inherit" })
  process.exit(r.status ?? 1)
}

const machineCp = (argv) => {
  const a = parse(argv, { "--mode": { key: "mode" }, "--uid": { key: "uid" }, "--gid": { key: "gid" } })
  const [src, dst] = a._
  if (!src || !dst) die("the following required arguments were not provided:\n  <SRC> <DST>", 2)
  const remote = (s) => (/^[A-Za-z0-9][A-Za-z0-9_.-]*:\//.test(s) ? { name: s.slice(0, s.indexOf(":")), path: s.slice(s.indexOf(":") + 1) } : undefined)
  const rs = remote(src)
  const rd = remote(dst)
  if (!!rs === !!rd) die("cp: exactly one of SRC and DST must be machine:path", 2)
  const r = rs ?? rd
  if (!readRecord(r.name)) die(`machine '${r.name}' not found`)
  dockerOk(["cp", rs ? `${containerOf(rs.name)}:${rs.path}` : src, rd ? `${containerOf(rd.name)}:${rd.path}` : dst], "cp")
  if (rd && (a.uid || a.gid || a.mode)) {
    const sh = [a.uid || a.gid ? `chown ${a.uid ?? 0}:${a.gid ?? 0} "$1"` : "", a.mode ? `chmod ${a.mode} "$1"` : ""].filter(Boolean).join("; ")
    dockerOk(["exec", "-u", "0", containerOf(rd.name), "sh", "-c", sh, "cp", rd.path], "cp")
  }
}

const machineLs = (argv) => {
  const a = parse(argv, { "--json": { key: "json", bool: true }, "-v": { key: "verbose", bool: true }, "--verbose": { key: "verbose", bool: true } })
  const names = fs.existsSync(machinesDir) ? fs.readdirSync(machinesDir).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5)).sort() : []
  const recs = names.map(readRecord).filter(Boolean)
  if (!a.json) {
    if (recs.length === 0) return console.log("No machines found")
    console.log(`${"NAME".padEnd(20)} ${"STATE".padEnd(12)}`)
    for (const r of recs) console.log(`${r.name.slice(0, 18).padEnd(20)} ${stateOf(r).state.padEnd(12)}`)
    return
  }
  if (recs.length === 0) return console.log("[]")
  console.log(JSON.stringify(recs.map((r) => {
    const s = stateOf(r)
    return {
      name: r.name, state: s.state, cpus: r.cpus, memory_mib: r.mem, pid: s.pid, mounts: 0, ports: 0, created_at: r.created_at,
      storage_gb: null, overlay_gb: null, image: r.image, entrypoint: [], cmd: [], ephemeral: false, gpu: false, gpu_vram_mib: null,
      cuda: null, forkable: false, cuda_fork_pool_size: null, cuda_vram_limit_mib: null, forkpoint_held: false, labels: r.labels,
      restart_policy: "never", restart_max_retries: 0, restart_count: 0, health_cmd: null, health_interval_secs: null,
      health_timeout_secs: null, health_retries: null, health_startup_grace_secs: null, network: r.net
    }
  }), null, 2))
}

const [cmd, sub, ...rest] = process.argv.slice(2)
if (cmd === "--version" || cmd === "-V") version()
else if (cmd === "pack" && sub === "create") packCreate(rest)
else if (cmd === "machine" || cmd === "vm") {
  const table = { create: machineCreate, start: machineStart, stop: machineStop, delete: machineDelete, exec: machineExec, cp: machineCp, ls: machineLs, list: machineLs }
  const f = table[sub]
  if (!f) die(`unrecognized subcommand '${sub}'`, 2)
  f(rest)
} else die(`unrecognized subcommand '${cmd}'`, 2)

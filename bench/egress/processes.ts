/**
 * Child processes of the egress benches: every one is tracked and killed when the bench exits.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import * as readline from "node:readline"

export const children: Array<ChildProcess> = []

export const killChildren = (signal: NodeJS.Signals = "SIGTERM") => {
  for (const c of children) if (c.exitCode === null) c.kill(signal)
}

/** Spawns a helper and resolves with the first line that `ready` recognizes (stdout or stderr). */
export const spawnReady = <A>(
  cmd: string,
  args: Array<string>,
  ready: (line: string) => A | undefined,
  env?: NodeJS.ProcessEnv
): Promise<{ child: ChildProcess; ready: A }> =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env })
    children.push(child)
    let err = ""
    const onLine = (line: string) => {
      const a = ready(line)
      if (a !== undefined) resolve({ child, ready: a })
    }
    readline.createInterface({ input: child.stdout! }).on("line", onLine)
    readline.createInterface({ input: child.stderr! }).on("line", (line) => {
      err += line + "\n"
      onLine(line)
    })
    child.once("exit", (code) => reject(new Error(`${path.basename(args.find((a) => a.includes("/")) ?? cmd)} exited ${code}: ${err.slice(-2000)}`)))
  })

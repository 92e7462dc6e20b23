#!/usr/local/bin/node
// sshd's AuthorizedKeysCommand (%u %t %k): asks the fake API which repositories hold this key
// right now, and prints one authorized_keys line per repository, with a forced command that
// serves that repository only (read-only keys cannot push).
const [user, type, blob] = process.argv.slice(2)
if (user !== "git" || !type || !blob) process.exit(0)
try {
  const r = await fetch(`http://127.0.0.1:8080/_rig/authorized?type=${encodeURIComponent(type)}&key=${encodeURIComponent(blob)}`)
  const grants = await r.json()
  for (const g of grants) {
    if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(g.repo)) continue
    process.stdout.write(`command="/opt/rig/git-shell.sh ${g.repo} ${g.readOnly ? "ro" : "rw"}",no-port-forwarding,no-X11-forwarding,no-agent-forwarding,no-pty ${type} ${blob}\n`)
  }
} catch {
  // The API is down: no key is authorized.
}

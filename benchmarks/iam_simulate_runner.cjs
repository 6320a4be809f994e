// Runs iam-simulate (@cloud-copilot/iam-simulate) over a file of iamgraph batch lines, for bench_eval.py.
// Usage: node iam_simulate_runner.cjs CACHE_DIR CASES.jsonl
// CACHE_DIR holds node_modules with the package (bench_eval.py installs it there with npm). Each line is
// converted to iam-simulate's Simulation shape before the clock starts; the timed loop runs the
// simulations one after another. Prints one JSON object: n, seconds, cpu_seconds, decisions, errors.
'use strict'
const fs = require('fs')
const path = require('path')
const { createRequire } = require('module')

const [cacheDir, casesFile] = process.argv.slice(2)
const req = createRequire(path.join(path.resolve(cacheDir), 'package.json'))
const { runSimulation } = req('@cloud-copilot/iam-simulate')

// iam-simulate takes context values as strings or lists of strings.
function contextOf(ctx) {
  const out = {}
  for (const [k, v] of Object.entries(ctx || {})) {
    out[k] = Array.isArray(v) ? v.map(String) : String(v)
  }
  return out
}

function simulationOf(line) {
  const r = line.request
  const p = line.policies
  const named = (docs, prefix) => (docs || []).map((policy, i) => ({ name: `${prefix}${i}`, policy }))
  const levels = (lv, prefix) =>
    (lv || []).map((docs, i) => ({ orgIdentifier: `${prefix}-level-${i}`, policies: named(docs, `${prefix}${i}-`) }))
  const sim = {
    request: {
      principal: r.principal,
      action: r.action,
      resource: { resource: r.resource, accountId: r.resourceAccount },
      contextVariables: contextOf(r.context)
    },
    identityPolicies: named(p.identity, 'identity'),
    serviceControlPolicies: levels(p.scps, 'scp'),
    resourceControlPolicies: levels(p.rcps, 'rcp')
  }
  if (p.resource) sim.resourcePolicy = p.resource
  if (p.permissionBoundary) sim.permissionBoundaryPolicies = [{ name: 'boundary', policy: p.permissionBoundary }]
  if (p.session) sim.sessionPolicy = p.session
  return sim
}

async function main() {
  const sims = fs
    .readFileSync(casesFile, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => simulationOf(JSON.parse(l)))
  // Warm up on one case (module loading, JIT), as the Python side does.
  await runSimulation(sims[0], {})
  const decisions = {}
  let errors = 0
  const cpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  for (const sim of sims) {
    const res = await runSimulation(sim, {})
    if (res.resultType === 'error') {
      errors += 1
      decisions.error = (decisions.error || 0) + 1
      if (errors === 1) process.stderr.write(JSON.stringify(res.errors).slice(0, 2000) + '\n')
      continue
    }
    decisions[res.overallResult] = (decisions[res.overallResult] || 0) + 1
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = process.cpuUsage(cpu0)
  process.stdout.write(
    JSON.stringify({ n: sims.length, seconds, cpu_seconds: (cpu.user + cpu.system) / 1e6, decisions, errors }) + '\n'
  )
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n')
  process.exit(1)
})

// node-postgres (npm `pg`) driver for the shared client scenario (scenario.json via scenario.py).
// Usage: node scenario.js '<config json>' < resolved-scenario.json ; prints the report as JSON.
// Config: host, servername (checked against the certificate: verify-full), port, user, database, ca (file;
// null: a server without TLS), prefix, long_sql, cancel_after_ms.
'use strict'
const fs = require('fs')
const pg = require('pg')
const { from: copyFrom, to: copyTo } = require('pg-copy-streams')
const Cursor = require('pg-cursor')

const cfg = JSON.parse(process.argv[2])
const scen = JSON.parse(fs.readFileSync(0, 'utf8'))
const types = pg.types

// node-pg turns date/time types into JS Date (millisecond precision, local time zone): they are read
// as the server's text here, as applications that care about precision do. Everything else uses the
// default parsers (int8 and numeric are strings by default; arrays are parsed into JS arrays).
const asText = (v) => v
for (const oid of [1082, 1083, 1266, 1114, 1184, 1186]) types.setTypeParser(oid, asText)
// Their arrays too, and numeric[] (whose default parser makes lossy JS numbers, unlike scalar numeric).
for (const oid of [1182, 1183, 1270, 1115, 1185, 1187, 1231]) types.setTypeParser(oid, asText)

function connect () {
  const c = new pg.Client({
    host: cfg.host,
    port: cfg.port,
    user: cfg.user,
    database: cfg.database,
    ssl: cfg.ca ? { ca: fs.readFileSync(cfg.ca), servername: cfg.servername, rejectUnauthorized: true } : false
  })
  return c.connect().then(() => c)
}

function cell (sqltype, v) {
  if (v === null || v === undefined) return null
  const isArr = sqltype.endsWith('[]')
  const base = sqltype.replace(/\(.*?\)/g, '').replace('[]', '')
  if (isArr && Array.isArray(v)) return v.map((x) => Array.isArray(x) ? cell(sqltype, x) : cell(base, x))
  if (isArr) return String(v)
  if (base === 'json' || base === 'jsonb') return JSON.stringify(v)
  if (typeof v === 'boolean') return v ? 't' : 'f'
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v)
  if (Buffer.isBuffer(v)) return '\\x' + v.toString('hex')
  if (v instanceof Date) return v.toISOString()
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

const err = (e) => (e.code ? e.code + ' ' : '') + (e.message || String(e))

async function main () {
  const rep = { values: {}, roundtrip: {}, errors: {}, checks: {} }
  const c = await connect()
  for (const t of scen.types) {
    const tb = `${cfg.prefix}_${t.name}`
    try {
      await c.query(`CREATE TABLE ${tb} (id int PRIMARY KEY, v ${t.type})`)
      await c.query(`INSERT INTO ${tb} (id, v) VALUES ${t.sql.map((s, i) => `(${i + 1}, ${s})`).join(', ')}`)
      // A named statement: Parse/Bind/Execute, like a prepared query in an application.
      const r = await c.query({ name: `sel_${t.name}`, text: `SELECT v FROM ${tb} ORDER BY id` })
      rep.values[t.name] = r.rows.map((row) => cell(t.type, row.v))
    } catch (e) {
      rep.errors[t.name] = err(e)
    }
  }
  const ck = rep.checks
  const guard = async (name, fn) => {
    try { ck[name] = await fn() } catch (e) { ck[name] = 'ERROR ' + err(e) }
  }
  const rows = scen.copy_rows
  await guard('rollback', async () => {
    await c.query(`CREATE TABLE ${cfg.prefix}_txn (a int)`)
    await c.query('BEGIN'); await c.query(`INSERT INTO ${cfg.prefix}_txn VALUES (1)`); await c.query('ROLLBACK')
    await c.query('BEGIN'); await c.query(`INSERT INTO ${cfg.prefix}_txn VALUES (2)`); await c.query('COMMIT')
    return (await c.query(`SELECT a FROM ${cfg.prefix}_txn ORDER BY a`)).rows.map((r) => r.a).join(' ')
  })
  await guard('error_recovery', async () => {
    const out = []
    try { await c.query('SELECT 1/0'); out.push('no error') } catch (e) { out.push(e.code) }
    await c.query('BEGIN')
    for (const sql of ['SELECT * FROM no_such_table', 'SELECT 1']) {
      try { await c.query(sql); out.push('no error') } catch (e) { out.push(e.code) }
    }
    await c.query('ROLLBACK')
    out.push(String((await c.query('SELECT 42 AS x')).rows[0].x))
    return out.join(' ')
  })
  await guard('savepoint', async () => {
    const tb = `${cfg.prefix}_sp`
    await c.query(`CREATE TABLE ${tb} (a int PRIMARY KEY)`)
    await c.query('BEGIN'); await c.query(`INSERT INTO ${tb} VALUES (1)`); await c.query('SAVEPOINT s')
    let state = 'no error'
    try { await c.query(`INSERT INTO ${tb} VALUES (1)`) } catch (e) { state = e.code }
    await c.query('ROLLBACK TO SAVEPOINT s'); await c.query(`INSERT INTO ${tb} VALUES (3)`); await c.query('COMMIT')
    return [state, ...(await c.query(`SELECT a FROM ${tb} ORDER BY a`)).rows.map((r) => r.a)].join(' ')
  })
  await guard('cancel', async () => {
    await c.query("SET statement_timeout = '20s'")
    const started = Date.now()
    const q = c.query(cfg.long_sql)
    await new Promise((resolve) => setTimeout(resolve, cfg.cancel_after_ms))
    // node-pg's own cancel: a new pg.Client sends CancelRequest(processID, secretKey) for the running query.
    const canceller = new pg.Client({ host: cfg.host, port: cfg.port, user: cfg.user, database: cfg.database })
    canceller.cancel(c, c.activeQuery)
    let state = 'no error'
    try { await q } catch (e) { state = e.code }
    const secs = (Date.now() - started) / 1000
    if (secs > 10) state = `slow(${Math.round(secs)}s) ${state}`
    await c.query('SET statement_timeout = 0')
    return `${state} ${(await c.query('SELECT 1 AS x')).rows[0].x}`
  })
  await guard('copy_in', async () => {
    await c.query(`CREATE TABLE ${cfg.prefix}_copy (a int, b text)`)
    const esc = (v) => v === null ? '\\N' : v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n')
    const stream = c.query(copyFrom(`COPY ${cfg.prefix}_copy (a, b) FROM STDIN`))
    await new Promise((resolve, reject) => {
      stream.on('error', reject)
      stream.on('finish', resolve)
      stream.end(rows.map(([a, b]) => `${a}\t${esc(b)}\n`).join(''))
    })
    const r = await c.query(`SELECT a, b FROM ${cfg.prefix}_copy ORDER BY a`)
    return r.rows.map((x) => `${x.a}|${x.b === null ? '<NULL>' : x.b}`).join(' ')
  })
  await guard('copy_out', async () => {
    const stream = c.query(copyTo('COPY (SELECT a, b FROM scenario_copysrc ORDER BY a) TO STDOUT'))
    const chunks = []
    await new Promise((resolve, reject) => {
      stream.on('data', (d) => chunks.push(d))
      stream.on('error', reject)
      stream.on('end', resolve)
    })
    return Buffer.concat(chunks).toString('utf8')
  })
  await guard('prepared', async () => {
    const out = []
    let i = 1
    for (const ch of 'abcdefg') {
      const r = await c.query({ name: 'scen_prep', text: "SELECT $1::int8 * 2 AS n, $2::text || '!' AS s", values: [i++, ch] })
      out.push(`${r.rows[0].n}:${r.rows[0].s}`)
    }
    return out.join(' ')
  })
  await guard('cursor', async () => {
    await c.query('BEGIN')
    const cur = c.query(new Cursor('SELECT i FROM generate_series(0, 999) g(i)'))
    const vals = []
    for (;;) {
      const batch = await cur.read(100)
      if (batch.length === 0) break
      for (const r of batch) vals.push(Number(r.i))
    }
    await cur.close()
    await c.query('COMMIT')
    return `${vals.length} ${vals.reduce((x, y) => x + y, 0)}`
  })
  await guard('notify', async () => {
    const heard = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no notification')), 5000)
      c.once('notification', (msg) => { clearTimeout(timer); resolve(`${msg.channel} ${msg.payload}`) })
    })
    await c.query('LISTEN scen_events')
    await c.query("NOTIFY scen_events, 'hello, world'")
    const got = await heard
    await c.query('UNLISTEN scen_events')
    return got
  })
  await guard('batch', async () => {
    await c.query(`CREATE TABLE ${cfg.prefix}_batch (a int, b text)`)
    await c.query('BEGIN')
    for (let i = 0; i < 100; i++) {
      await c.query({ name: 'scen_batch', text: `INSERT INTO ${cfg.prefix}_batch VALUES ($1, $2)`, values: [i, `r${i}`] })
    }
    await c.query('COMMIT')
    const r = await c.query(`SELECT count(*) AS n, sum(a) AS s FROM ${cfg.prefix}_batch`)
    return `${r.rows[0].n} ${r.rows[0].s}`
  })
  await c.end()
  process.stdout.write(JSON.stringify(rep))
}

main().catch((e) => { console.error(e); process.exit(1) })

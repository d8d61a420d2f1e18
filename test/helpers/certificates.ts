/**
 * A throwaway certificate authority and a server certificate for
 * 127.0.0.1, made with the `openssl` command, for tests that serve or
 * reach TLS on loopback.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Writes `ca.crt`, `server.key` and `server.crt` (valid for IP 127.0.0.1,
 * two days) into `dir`, and returns the path of the CA certificate.
 */
export function makeCertificates(dir: string): string {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  run(['req', '-x509', ...ecKey, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=web-top test CA'])
  run(['req', ...ecKey, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'])
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n')
  run([
    'x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext',
  ])
  return join(dir, 'ca.crt')
}

/** Returns why this machine cannot run the TLS tests, or undefined when it can. */
export function findTlsBlocker(): string | undefined {
  const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8' })
  if (openssl.error !== undefined) return 'openssl is not on PATH'
  // A build with TLS accepts --tls-port and then stops because nothing listens.
  const probe = spawnSync('redis-server', ['--port', '0', '--tls-port', '0'], { encoding: 'utf8', timeout: 5_000 })
  if (!`${probe.stdout}${probe.stderr}`.includes('Configured to not listen anywhere')) {
    return 'this redis-server was built without TLS (it rejects --tls-port)'
  }
  return undefined
}

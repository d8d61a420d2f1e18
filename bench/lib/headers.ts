/**
 * Request headers that a desktop Chrome sends on a same-site navigation,
 * about 600 bytes on the wire, so that header capture and redaction cost
 * what they cost in production. The cookie is masked by web-top's default
 * redaction rules, like a real session cookie would be.
 */
export const BROWSER_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'User-Agent':
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
  'Accept-Language': 'en-US,en;q=0.9,de;q=0.8',
  'Accept-Encoding': 'gzip, deflate, br, zstd',
  Referer: 'http://127.0.0.1/products?page=2',
  Cookie: 'session_id=7f3c2a9e41d84b6f9a0c5e2d8b1f4a7c; theme=dark; lang=en',
  'sec-ch-ua': '"Not/A)Brand";v="8", "Chromium";v="126", "Google Chrome";v="126"',
  'sec-ch-ua-mobile': '?0',
  'sec-ch-ua-platform': '"Linux"',
  'Sec-Fetch-Dest': 'document',
  'Sec-Fetch-Mode': 'navigate',
  'Sec-Fetch-Site': 'same-origin',
})

/** Returns the bytes the headers take on the wire, as `Name: value\r\n` lines. */
export function headerBytes(headers: Readonly<Record<string, string>>): number {
  let bytes = 0
  for (const [name, value] of Object.entries(headers)) {
    bytes += Buffer.byteLength(`${name}: ${value}\r\n`)
  }
  return bytes
}

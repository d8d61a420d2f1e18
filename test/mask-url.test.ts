/**
 * maskUrl, which masks tracker URLs in log lines and CLI messages, and
 * maskUrlsInText, which masks the URLs inside a recorded command-line
 * argument and must keep a URL without secrets exactly as written.
 */
import { describe, expect, it } from 'vitest'
import { maskUrl, maskUrlPart, maskUrlsInText, readPasswords } from '../src/util/mask-url'

describe('maskUrl parameters', () => {
  it.each([
    ['redis://h:1/?pwd=S1&db=0', 'redis://h:1/?pwd=***&db=0'],
    ['redis://h:1/?passwd=S1&db=0', 'redis://h:1/?passwd=***&db=0'],
    ['redis://h:1/?auth=S1&db=0', 'redis://h:1/?auth=***&db=0'],
    ['redis://h:1/?api_key=S1&db=0', 'redis://h:1/?api_key=***&db=0'],
    ['redis://h:1/?access_key=S1&db=0', 'redis://h:1/?access_key=***&db=0'],
    ['redis://h:1/?accessKey=S1&db=0', 'redis://h:1/?accessKey=***&db=0'],
    ['redis://h:1/?sasKey=S1&db=0', 'redis://h:1/?sasKey=***&db=0'],
    ['https://h.test/c?sv=2024&sig=S1', 'https://h.test/c?sv=2024&sig=***'],
    ['https://h.test/c?X-Amz-Signature=S1&x=1', 'https://h.test/c?X-Amz-Signature=***&x=1'],
    ['https://h.test/c?user[password]=S1&x=1', 'https://h.test/c?user[password]=***&x=1'],
    ['https://h.test/cb#access_token=S1&y=1', 'https://h.test/cb#access_token=***&y=1'],
    ['https://h.test/cb?x=1#token=S1', 'https://h.test/cb?x=1#token=***'],
    ['https://h.test/cb?token=S1#S2&y=1', 'https://h.test/cb?token=***&y=1'],
    ['redis://h:1/?pass%77ord=S1&db=0', 'redis://h:1/?pass%77ord=***&db=0'],
    ['redis://h:1/?%70assword=S1', 'redis://h:1/?%70assword=***'],
    ['https://h.test/c?api%5Fkey=S1&x=1', 'https://h.test/c?api%5Fkey=***&x=1'],
  ])('masks %s', (url, masked) => {
    expect(maskUrl(url)).toBe(masked)
  })

  it.each([
    ['redis://h:1/?keyspace=events&db=0'],
    ['redis://h:1/?key_prefix=shop&db=0'],
    ['https://h.test/cb#section-2'],
    ['https://h.test/cb?tokens_used=5&passive=1'],
    ['https://h.test/cb?q=a%20b&page%5Fsize=5'],
  ])('keeps %s', (url) => {
    expect(maskUrl(url)).toBe(url)
  })
})

describe('maskUrl passwords', () => {
  it.each([
    ['redis://user:p@ss/w@127.0.0.1:6379', 'redis://user:***@127.0.0.1:6379'],
    ['redis://:a@b@host', 'redis://:***@host'],
    ['redis://:a@b@host:6379/0', 'redis://:***@host:6379/0'],
    ['redis://u:pa/ss@h:1?x=1', 'redis://u:***@h:1?x=1'],
    ['redis://u:p?ss@h:1', 'redis://u:***@h:1'],
    ['redis://u:x,y@h2', 'redis://u:***@h2'],
    ['redis://u:p,w@h1:1,redis://u:p2@h2:2', 'redis://u:***@h1:1,redis://u:***@h2:2'],
    ['redis://h0:1,redis://u:p@ss/w@h1:1', 'redis://h0:1,redis://u:***@h1:1'],
    ['redis+cluster://:p,w@127.0.0.1:7000,127.0.0.1:7001', 'redis+cluster://:***@127.0.0.1:7000,127.0.0.1:7001'],
    ['redis://user@corp:pw@h:1', 'redis://user%40corp:***@h:1'],
    ['redis://u:p w@h', 'redis://u:***@h'],
    ['rediss://u:p@ss@h:1?password=S1#S2', 'rediss://u:***@h:1?password=***'],
    ['redis://u:1234/5678@127.0.0.1:6379', 'redis://u:***@127.0.0.1:6379'],
    ['redis://:99/sEcReT@127.0.0.1:1/0', 'redis://:***@127.0.0.1:1/0'],
    ['redis://:99?sEcReT@127.0.0.1:1/0', 'redis://:***@127.0.0.1:1/0'],
    ['redis://:99#sEcReT@127.0.0.1:1/0', 'redis://:***@127.0.0.1:1/0'],
    ['redis://u:p@ss?w@127.0.0.1:1', 'redis://u:***@127.0.0.1:1'],
    ['rediss+cluster://:12/34@127.0.0.1:7000,127.0.0.1:7001', 'rediss+cluster://:***@127.0.0.1:7000,127.0.0.1:7001'],
    ['redis+sentinel://:12/34@127.0.0.1:26379/mymaster', 'redis+sentinel://:***@127.0.0.1:26379/mymaster'],
    ['valkey://u:12/34@127.0.0.1:1', 'valkey://u:***@127.0.0.1:1'],
    ['redis://h:1/?sentinelPassword=S1@S2', 'redis://h:***'],
    ['https://u:pa/ss@h:1?password=S1@S2', 'https://u:***'],
  ])('masks %s', (url, masked) => {
    expect(maskUrl(url)).toBe(masked)
  })

  it.each([
    ['redis://user@h:1/0'],
    ['redis://[::1]:6379/0'],
    ['https://h.test:8443/@alice'],
    ['https://h.test/wiki/User:Ann@home'],
    ['https://h.test/?email=ann@shop.test'],
    ['localhost:6379'],
    ['memory://'],
  ])('keeps %s', (url) => {
    expect(maskUrl(url)).toBe(url)
  })
})

describe('maskUrl cluster and Sentinel nodes', () => {
  it.each([
    ['redis+cluster://u:S5@127.0.0.1:1,u:S6@127.0.0.1:2', 'redis+cluster://u:***@127.0.0.1:1,u:***@127.0.0.1:2'],
    ['redis+sentinel://u:S5@127.0.0.1:1,u:S9@127.0.0.1:2/m', 'redis+sentinel://u:***@127.0.0.1:1,u:***@127.0.0.1:2/m'],
    ['redis+cluster://127.0.0.1:1,u:S6@127.0.0.1:2', 'redis+cluster://127.0.0.1:***,u:***@127.0.0.1:2'],
    ['rediss+cluster://[::1]:7000,u:S6@[::1]:7001', 'rediss+cluster://[::1]:***,u:***@[::1]:7001'],
    ['redis+cluster://u:S5@h1:1,S6@h2:2', 'redis+cluster://u:***@h1:1,***@h2:2'],
    ['redis+cluster://u:S5@ss@h1:1,h2:2', 'redis+cluster://u:***@h1:1,h2:2'],
    ['redis+cluster://u:12,S6@h1:1,h2:2', 'redis+cluster://u:***@h1:1,h2:2'],
    ['redis+cluster://u:S5,S6,S7@h1:1', 'redis+cluster://u:***@h1:1'],
    ['redis+sentinel://h1:1,u:S6@h2:2/m?sentinelPassword=S7', 'redis+sentinel://h1:***,u:***@h2:2/m?sentinelPassword=***'],
  ])('masks each node of %s', (url, masked) => {
    expect(maskUrl(url)).toBe(masked)
  })

  it.each([
    ['redis+cluster://127.0.0.1:7000,127.0.0.1:7001'],
    ['redis+cluster://u@h1:1,h2:2'],
    ['REDIS+SENTINEL://H1:26379,[::1]:26380/m/0'],
  ])('keeps %s as written', (url) => {
    expect(maskUrl(url)).toBe(url)
  })

  it('masks a node URL inside text', () => {
    expect(maskUrlsInText('--url=redis+cluster://h1:1,u:S6@h2:2')).toBe('--url=redis+cluster://h1:***,u:***@h2:2')
  })
})

describe('maskUrlPart', () => {
  it.each([
    ['redis+cluster://u:S5@127.0.0.1:1,u:S6@127.0.0.1:2', 'u:S6@127.0.0.1:2', 'u:***@127.0.0.1:2'],
    ['redis+cluster://u:S5@ss@h:1', 'ss@h:1', '***@h:1'],
    ['redis+sentinel://u:S5/x@h:1/m', 'S5', '***'],
    ['redis+cluster://:S5@h:x', 'h:x', 'h:x'],
  ])('masks the part %s of %s', (url, part, masked) => {
    const start = url.lastIndexOf(part)
    expect(maskUrlPart(url, start, start + part.length)).toBe(masked)
  })
})

describe('maskUrl serialisation', () => {
  it.each([
    ['HTTP://Example.test:80/a/../b', 'http://example.test/b'],
    ['HTTPS://u:S1@Example.test/?token=S2', 'https://u:***@example.test/?token=***'],
  ])('serialises %s as parsed', (url, masked) => {
    expect(maskUrl(url)).toBe(masked)
  })
})

describe('maskUrlsInText', () => {
  it.each([
    ['CONFIG={"url":"redis://u:S1@h"}', 'CONFIG={"url":"redis://u:***@h"}'],
    ['--dsn=postgres://u:S1@h/db', '--dsn=postgres://u:***@h/db'],
    ['x,redis://u:S1@h', 'x,redis://u:***@h'],
    ['HTTPS://u:S1@Example.test:443/a/../b', 'HTTPS://u:***@Example.test:443/a/../b'],
    ['a redis://u:S1@h b https://h.test/?token=S2 c', 'a redis://u:***@h b https://h.test/?token=*** c'],
    ['redis://h0,redis://u:S1@h1', 'redis://h0,redis://u:***@h1'],
    ['redis://u:S1 S2@h', 'redis://u:***@h'],
    ['--url redis://u:S1\nS2 S3@h:1/0 -v', '--url redis://u:***@h:1/0 -v'],
    ["--url=redis://u:S1'S2@h:1", '--url=redis://u:***@h:1'],
    ['--url=redis://u:S1"S2@h:1', '--url=redis://u:***@h:1'],
    ['--url=redis://u:S1<S2@h:1', '--url=redis://u:***@h:1'],
    ['--url=redis://u:S1>S2@h:1', '--url=redis://u:***@h:1'],
    ['--url=redis://u:S1`S2@h:1', '--url=redis://u:***@h:1'],
    ['{"a":"redis://u:S1","b":"x@h"}', '{"a":"redis://u:***@h"}'],
  ])('masks %s', (text, masked) => {
    expect(maskUrlsInText(text)).toBe(masked)
  })

  it.each([
    ['CONFIG={"url":"http://Example.test:80/a/../b"}'],
    ['see https://h.test:443/@alice and REDIS://H:1/0'],
    ['HTTPS://u@Example.test:443/a/../b?q=1'],
    ['://u:p'],
    ['redis://h:6379 and ann@shop.test'],
    ['redis://u:p a://b@c'],
  ])('keeps %s', (text) => {
    expect(maskUrlsInText(text)).toBe(text)
  })
})

describe('maskUrl on hostile input', () => {
  // Each input is about 100 kB. A pattern that backtracks on one of them
  // would take minutes, so the generous limit still catches it.
  const hostileInputs = [
    `redis://h/?${'a'.repeat(100_000)}`,
    `redis://h/${'?a'.repeat(50_000)}`,
    `redis://u:${'@'.repeat(100_000)}`,
    `redis://${':/'.repeat(50_000)}@h`,
    `${'a'.repeat(100_000)}://`,
    `${',a'.repeat(50_000)}://`,
    `${'a://'.repeat(25_000)}`,
    `${'x://u:p@h,'.repeat(10_000)}`,
    `${'a://u:p '.repeat(12_500)}@`,
    `a://u:p ${' x'.repeat(50_000)}@`,
    `${"a://u:p'".repeat(12_500)}@`,
    `a://u:p"${'<x'.repeat(50_000)}@`,
    `redis+cluster://${'h:1,'.repeat(25_000)}@h`,
    `redis+cluster://u:p${',@'.repeat(50_000)}`,
    `redis+sentinel://${',x'.repeat(50_000)}@h/m`,
  ]

  it.each(hostileInputs.map((input, index) => [index, input]))('masks input %i quickly', (_index, input) => {
    const startedAt = Date.now()
    maskUrl(input)
    maskUrlsInText(input)
    expect(Date.now() - startedAt).toBeLessThan(3_000)
  })
})

describe('readPasswords', () => {
  it.each([
    ['redis://u:pw@127.0.0.1:6379', ['pw']],
    ['redis://u:p@ss/w@127.0.0.1:6379/0', ['p@ss/w']],
    ['redis://u:p,w@h1:7000,redis://u:p2@h2:7001', ['p,w', 'p2']],
    ['redis://:a@b@host', ['a@b']],
    ['redis://127.0.0.1:6379', []],
    ['redis://user@host:6379', []],
    ['redis://u:1234/5678@127.0.0.1:6379', ['1234/5678']],
    ['redis+cluster://u:S5@h1:1,u:S6@h2:2', ['S5', 'S6']],
    ['redis+cluster://u:S5,S6@h1:1,h2:2', ['S5,S6']],
  ])('reads the passwords of %s', (url, expected) => {
    expect(readPasswords(url)).toEqual(expected)
  })

  it('reads the password that maskUrl masks', () => {
    const url = 'redis://u:p@ss/w@127.0.0.1:6379/0'
    const [password] = readPasswords(url)
    expect(password).toBe('p@ss/w')
    expect(maskUrl(url)).not.toContain('ss/w')
  })
})

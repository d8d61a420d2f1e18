/** The part of signal-exit 3's API that the test apps use: the package ships no types. */
declare module 'signal-exit3' {
  function onExit(handler: (code: number | null, signal: string | null) => void): () => void
  export default onExit
}

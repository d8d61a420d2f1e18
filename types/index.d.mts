// Declarations of the ES module build (dist/index.mjs), for TypeScript's
// `nodenext` and `node16`. They re-export the CommonJS declarations, so a
// project with both kinds of files sees one Recorder class and one
// `webTop` decoration on Fastify. As an ES module file, this one has no
// default export, like dist/index.mjs.
export * from '../dist/index.js'

export * from '../trackers/protocol-mismatch'

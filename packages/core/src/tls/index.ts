export { cipherSuite, ktlsCipherList, type CipherSuite, type TlsVersionName } from './cipher-suites.js';
export { KtlsCounters, type KtlsCountersSnapshot } from './counters.js';
export { KtlsError, KtlsUnavailableError, type KtlsCloseReason } from './errors.js';
export {
  handOff,
  ktlsAccept,
  ktlsConnect,
  KtlsHandoffError,
  type KtlsClientOptions,
  type KtlsHandoffMode,
  type KtlsHandoffOptions,
  type KtlsInfo,
  type KtlsServerOptions,
  type TlsConnection,
} from './handoff.js';
export { DEFAULT_KEY_UPDATE_RECORDS, type KeyUpdateLimits } from './key-update.js';
export { ktlsSupport, probeKtlsSupport, type KtlsSupport } from './kernel-support.js';
export { KtlsSocket, type KtlsSocketOptions } from './ktls-socket.js';
export { KTLS_MODES, planServerTls, type KtlsMode, type PlaintextSocket, type TlsReport, type TlsStatsSnapshot } from './server-tls.js';
export { parseTlsStat, readTlsStat, type TlsStat } from './tls-stat.js';

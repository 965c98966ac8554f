import type { ExchangeResult } from '../credentials/exchange.js';

/** The AWS keys in AWS `credential_process` shape (`/oauth2/token`, `/v1/credentials` and the page). */
export function credentialProcessJson({ credentials }: Pick<ExchangeResult, 'credentials'>) {
  return {
    Version: 1,
    AccessKeyId: credentials.accessKeyId,
    SecretAccessKey: credentials.secretAccessKey,
    SessionToken: credentials.sessionToken,
    Expiration: credentials.expiresAt.toISOString(),
  };
}

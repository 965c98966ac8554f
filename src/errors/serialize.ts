import type { GatewayError } from './gateway-error.js';
import { ERROR_CODES } from './gateway-error.js';

/** The STS XML namespace, as in every AWS STS response. */
export const STS_NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Anything escapeXml changes: a character XML 1.0 cannot carry, or one of the five it escapes. */
const NEEDS_ESCAPING = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff&<>"']/;

/** Escapes text for an XML element or attribute. */
export function escapeXml(text: string): string {
  // Most values (keys, tokens, ids) need nothing: one scan to tell, instead of two replacing ones.
  if (!NEEDS_ESCAPING.test(text)) return text;
  // Characters XML 1.0 cannot carry at all are dropped rather than escaped.
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '').replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

/** AWS's `ErrorResponse` body. */
export function toAwsErrorXml(err: GatewayError, requestId: string): string {
  const type = ERROR_CODES[err.code].awsType;
  return (
    `<ErrorResponse xmlns="${STS_NAMESPACE}">\n` +
    `  <Error>\n    <Type>${type}</Type>\n    <Code>${err.status >= 500 && err.code !== 'ServiceUnavailable' ? 'InternalFailure' : err.code}</Code>\n` +
    `    <Message>${escapeXml(err.publicMessage)}</Message>\n  </Error>\n` +
    `  <RequestId>${escapeXml(requestId)}</RequestId>\n</ErrorResponse>\n`
  );
}

/** RFC 6749 §5.2 error JSON. */
export function toOAuthErrorJson(err: GatewayError): { error: string; error_description: string } {
  const status = err.oauthStatus;
  return { error: status >= 500 ? (status === 503 ? 'temporarily_unavailable' : 'server_error') : err.oauthCode, error_description: err.publicMessage };
}

/** An XML element with escaped text. */
export function xmlElement(name: string, text: string): string {
  return `<${name}>${escapeXml(text)}</${name}>`;
}

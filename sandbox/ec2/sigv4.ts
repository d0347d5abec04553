/**
 * AWS Signature Version 4, checked as AWS checks it: the canonical request is rebuilt from what
 * arrived and the signatures compared ("Create a signed AWS API request", IAM User Guide).
 * Shared by the EC2 and SSM fakes.
 */
import crypto from 'node:crypto';
import type http from 'node:http';

export type SigV4Failure = 'missing' | 'incomplete' | 'unknown-key' | 'wrong-service' | 'bad-signature';
export type SigV4Result =
  | { ok: true; accessKeyId: string; region: string; service: string }
  | { ok: false; failure: SigV4Failure; detail: string };

const sha256 = (data: string | Buffer): string => crypto.createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer => crypto.createHmac('sha256', key).update(data).digest();
const rfc3986 = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Verifies an `Authorization: AWS4-HMAC-SHA256 ...` header the way AWS does: it rebuilds the
 * canonical request from what arrived and compares signatures.
 */
export function verifySigV4(
  req: http.IncomingMessage,
  body: Buffer,
  expected: { service: string; accessKeyId: string; secretAccessKey: string },
): SigV4Result {
  const auth = req.headers.authorization;
  if (!auth) return { ok: false, failure: 'missing', detail: 'no Authorization header' };
  const m = /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})\s*$/.exec(
    auth,
  );
  if (!m)
    return {
      ok: false,
      failure: 'incomplete',
      detail: `Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters. Authorization=${auth.split(' ')[0]}`,
    };
  const [, credential, signedHeadersRaw, signature] = m as unknown as [string, string, string, string];
  const scope = credential.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request') {
    return {
      ok: false,
      failure: 'incomplete',
      detail: `Credential should be scoped to a valid region, not '${scope[2] ?? ''}'. `,
    };
  }
  const [accessKeyId, date, region, service] = scope as [string, string, string, string, string];
  if (accessKeyId !== expected.accessKeyId) return { ok: false, failure: 'unknown-key', detail: accessKeyId };
  if (service !== expected.service) {
    return {
      ok: false,
      failure: 'wrong-service',
      detail: `Credential should be scoped to correct service: '${expected.service}'. `,
    };
  }
  const amzDate = header(req, 'x-amz-date');
  if (!amzDate?.startsWith(date)) {
    return {
      ok: false,
      failure: 'incomplete',
      detail:
        "Date must be in ISO-8601 'basic format'. Got x-amz-date missing or not matching the credential scope date.",
    };
  }
  const signedHeaders = signedHeadersRaw.split(';');
  if (!signedHeaders.includes('host')) {
    return { ok: false, failure: 'incomplete', detail: "'Host' must be a 'SignedHeader' in the AWS Authorization." };
  }
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  const canonicalPath =
    rawPath
      .split('/')
      .map((seg) => rfc3986(rfc3986(decodeURIComponent(seg))))
      .join('/') || '/';
  const canonicalQuery = rawQuery
    .split('&')
    .filter((p) => p.length > 0)
    .map((p) => {
      const eq = p.indexOf('=');
      const k = decodeURIComponent((eq < 0 ? p : p.slice(0, eq)).replace(/\+/g, ' '));
      const v = eq < 0 ? '' : decodeURIComponent(p.slice(eq + 1).replace(/\+/g, ' '));
      return [rfc3986(k), rfc3986(v)] as const;
    })
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalHeaders = signedHeaders
    .map((h) => `${h}:${(header(req, h) ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const payloadHash = header(req, 'x-amz-content-sha256') ?? sha256(body);
  const canonicalRequest = [
    req.method ?? 'POST',
    canonicalPath,
    canonicalQuery,
    canonicalHeaders,
    signedHeadersRaw,
    payloadHash,
  ].join('\n');
  const credentialScope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, credentialScope, sha256(canonicalRequest)].join('\n');
  const kDate = hmac(`AWS4${expected.secretAccessKey}`, date);
  const kSigning = hmac(hmac(hmac(kDate, region), service), 'aws4_request');
  const expectedSig = crypto.createHmac('sha256', kSigning).update(stringToSign).digest('hex');
  if (!crypto.timingSafeEqual(Buffer.from(expectedSig), Buffer.from(signature))) {
    return { ok: false, failure: 'bad-signature', detail: 'signature mismatch' };
  }
  return { ok: true, accessKeyId, region, service };
}

export function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(',') : v;
}

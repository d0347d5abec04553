/**
 * Fake SSM Parameter Store, only the public AMI parameters the product resolves.
 *
 * SSM speaks `awsJson1_1`, not the Query protocol: `POST /` with `X-Amz-Target:
 * AmazonSSM.<Operation>`, a JSON body, JSON answers, and errors as HTTP 400 with
 * `{"__type": "<Code>", "message": "..."}`. Requests must carry a valid SigV4 signature for
 * service `ssm`.
 */
import crypto from 'node:crypto';
import {
  ACCOUNT_ID,
  AwsIam,
  Ec2Error as SsmError,
  IMAGES,
  KNOWN_IMAGES,
  SANDBOX_ADMIN_CREDENTIALS,
  SANDBOX_CREDENTIALS,
  type SigV4Failure,
  denialSentence,
  verifySigV4,
} from './ec2.js';
import { type Answer, type FaultPlan, type Identified, pipeline } from './core/index.js';
import { serve } from './http.js';

/**
 * Public parameters and the sandbox AMI each points to. Names as published by Canonical
 * (`/aws/service/canonical/ubuntu/server/<release>/stable/current/<arch>/hvm/<volume>/ami-id`),
 * the Deep Learning AMI team (`/aws/service/deeplearning/ami/<arch>/<image>/latest/ami-id`) and
 * Amazon Linux (`/aws/service/ami-amazon-linux-latest/...`).
 */
export const PUBLIC_PARAMETERS: Readonly<Record<string, string>> = {
  '/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id': KNOWN_IMAGES.ubuntuX64,
  '/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id': KNOWN_IMAGES.ubuntuArm64,
  '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id': KNOWN_IMAGES.gpu2204X64,
  '/aws/service/deeplearning/ami/arm64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id':
    KNOWN_IMAGES.gpu2204Arm64,
  '/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id': KNOWN_IMAGES.gpuX64,
  '/aws/service/deeplearning/ami/arm64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id': KNOWN_IMAGES.gpuArm64,
  '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64': KNOWN_IMAGES.al2023X64,
  '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64': KNOWN_IMAGES.al2023Arm64,
};

for (const ami of Object.values(PUBLIC_PARAMETERS)) {
  if (!IMAGES.some((i) => i.id === ami)) throw new Error(`sandbox: SSM parameter points to unknown AMI ${ami}`);
}

export interface SsmCall {
  action: string;
  status: number;
  code?: string;
  at: number;
  ms: number;
}

export interface FakeSsm {
  url: string;
  calls: SsmCall[];
  /** Points a public parameter at another AMI (or adds one), e.g. to test a stale image. */
  setParameter(name: string, value: string): void;
  close(): Promise<void>;
}

const FAULT_STATUS: Record<string, number> = {
  ThrottlingException: 400,
  InternalServerError: 500,
  ServiceUnavailable: 503,
};

interface SsmRequest extends Identified {
  method: string;
  /** Whether the target names the AmazonSSM service at all. */
  known: boolean;
  /** The JSON body; undefined when it is not a JSON object. */
  input: Record<string, unknown> | undefined;
}

interface ParameterValue {
  Name: string;
  Type: 'String';
  Value: string;
  Version: number;
  LastModifiedDate: number;
  ARN: string;
  DataType: 'aws:ec2:image';
}

/** A parameter's ARN: the public ones (`/aws/service/...`) have no account in it. */
const parameterArn = (name: string, region: string): string =>
  `arn:aws:ssm:${region}:${name.startsWith('/aws/service/') ? '' : ACCOUNT_ID}:parameter${name.startsWith('/') ? '' : '/'}${name}`;

export async function startFakeSsm(opts: {
  faults: FaultPlan;
  latencyMs?: number;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** The account's IAM, shared with the fake EC2. Default: the documented launcher policy. */
  iam?: AwsIam;
}): Promise<FakeSsm> {
  const creds = opts.credentials ?? SANDBOX_CREDENTIALS;
  const iam = opts.iam ?? new AwsIam();
  /**
   * IAM for the launching identity: SSM answers a denial with 400 `AccessDeniedException` and
   * IAM's sentence ("Troubleshoot access denied error messages",
   * https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html, read 2026-12-08).
   */
  const authorize = (accessKeyId: string, action: string, names: string[], region: string): void => {
    const denied = iam.check(
      accessKeyId === SANDBOX_ADMIN_CREDENTIALS.accessKeyId,
      names.map((name) => ({ action: `ssm:${action}`, resource: parameterArn(name.replace(/:\d+$/, ''), region) })),
    );
    if (denied) throw new SsmError('AccessDeniedException', denialSentence(denied));
  };
  const params = new Map<string, { value: string; version: number; modified: number }>(
    Object.entries(PUBLIC_PARAMETERS).map(([k, v]) => [
      k,
      { value: v, version: 1, modified: Date.UTC(2025, 9, 10) / 1000 },
    ]),
  );
  const calls: SsmCall[] = [];

  const view = (name: string, region: string): ParameterValue | undefined => {
    const p = params.get(name);
    if (!p) return undefined;
    return {
      Name: name,
      Type: 'String',
      Value: p.value,
      Version: p.version,
      LastModifiedDate: p.modified,
      ARN: `arn:aws:ssm:${region}::parameter${name}`,
      DataType: 'aws:ec2:image',
    };
  };

  const checkName = (name: unknown, field: string): string => {
    if (name === undefined || name === null) {
      throw new SsmError(
        'ValidationException',
        `1 validation error detected: Value null at '${field}' failed to satisfy constraint: Member must not be null`,
      );
    }
    if (typeof name !== 'string') throw new SsmError('SerializationException', `Unexpected value for ${field}`);
    if (name.length < 1 || name.length > 2048) {
      throw new SsmError(
        'ValidationException',
        `1 validation error detected: Value '${name}' at '${field}' failed to satisfy constraint: Member must have length less than or equal to 2048`,
      );
    }
    return name;
  };

  const operations: Record<string, (input: Record<string, unknown>, region: string, who: string) => unknown> = {
    GetParameter: (input, region, who) => {
      const name = checkName(input.Name, 'name');
      authorize(who, 'GetParameter', [name], region);
      const found = view(name.replace(/:\d+$/, ''), region);
      if (!found) throw new SsmError('ParameterNotFound', '');
      return { Parameter: found };
    },
    GetParameters: (input, region, who) => {
      const names = input.Names;
      if (!Array.isArray(names)) {
        throw new SsmError(
          'ValidationException',
          "1 validation error detected: Value null at 'names' failed to satisfy constraint: Member must not be null",
        );
      }
      if (names.length < 1 || names.length > 10) {
        throw new SsmError(
          'ValidationException',
          `1 validation error detected: Value '[${names.join(', ')}]' at 'names' failed to satisfy constraint: Member must have length less than or equal to 10`,
        );
      }
      authorize(
        who,
        'GetParameters',
        names.map((n) => checkName(n, 'names')),
        region,
      );
      const found: ParameterValue[] = [];
      const invalid: string[] = [];
      for (const n of names) {
        const name = checkName(n, 'names');
        const p = view(name, region);
        if (p) found.push(p);
        else invalid.push(name);
      }
      return { Parameters: found, InvalidParameters: invalid };
    },
  };

  const authFailures = (detail: string): Record<SigV4Failure, SsmError> => ({
    missing: new SsmError('MissingAuthenticationTokenException', 'Missing Authentication Token'),
    incomplete: new SsmError('IncompleteSignatureException', detail),
    'unknown-key': new SsmError(
      'UnrecognizedClientException',
      'The security token included in the request is invalid.',
    ),
    'wrong-service': new SsmError('InvalidSignatureException', detail),
    'bad-signature': new SsmError(
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    ),
  });
  const answer = (status: number, payload: unknown, code?: string): Answer => ({
    status,
    body: JSON.stringify(payload),
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': crypto.randomUUID() },
    ...(code ? { code } : {}),
  });

  const server = await serve(
    'ssm',
    pipeline<SsmRequest, { region: string; accessKeyId: string }>({
      service: 'ssm',
      faults: opts.faults,
      ...(opts.latencyMs ? { latencyMs: opts.latencyMs } : {}),
      identify: (req, body) => {
        const target = String(req.headers['x-amz-target'] ?? '');
        const action = target.startsWith('AmazonSSM.') ? target.slice('AmazonSSM.'.length) : target;
        let input: Record<string, unknown> | undefined;
        try {
          const parsed: unknown = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
          if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
            input = parsed as Record<string, unknown>;
        } catch {
          input = undefined;
        }
        const name = typeof input?.Name === 'string' ? { Name: input.Name } : undefined;
        return {
          action,
          method: req.method ?? '',
          known: target.startsWith('AmazonSSM.'),
          input,
          ...(name ? { params: name } : {}),
        };
      },
      authenticate: (req, body) => {
        let auth = verifySigV4(req, body, { service: 'ssm', ...creds });
        if (!auth.ok && auth.failure === 'unknown-key' && auth.detail === SANDBOX_ADMIN_CREDENTIALS.accessKeyId)
          auth = verifySigV4(req, body, { service: 'ssm', ...SANDBOX_ADMIN_CREDENTIALS });
        if (!auth.ok) throw authFailures(auth.detail)[auth.failure];
        return { region: auth.region, accessKeyId: auth.accessKeyId };
      },
      identityOf: (who) => who.accessKeyId,
      faultError: (fault) =>
        new SsmError(
          fault.code ?? 'ThrottlingException',
          fault.message ?? 'Rate exceeded',
          fault.status ?? FAULT_STATUS[fault.code ?? ''] ?? 400,
        ),
      handle: (request, who) => {
        const op = request.known ? operations[request.action] : undefined;
        if (!op || request.method !== 'POST') throw new SsmError('UnknownOperationException', '');
        if (!request.input)
          throw new SsmError('SerializationException', 'Start of structure or map found where not expected.');
        return answer(200, op(request.input, who.region, who.accessKeyId));
      },
      errorAnswer: (err) => {
        if (!(err instanceof SsmError)) throw err;
        return answer(err.status, { __type: err.code, message: err.message }, err.code);
      },
      record: (call) =>
        calls.push({
          action: call.action,
          status: call.status,
          ...(call.code ? { code: call.code } : {}),
          at: call.at,
          ms: call.ms,
        }),
    }),
  );

  return {
    url: server.url,
    calls,
    setParameter: (name, value) => {
      const prior = params.get(name);
      params.set(name, { value, version: (prior?.version ?? 0) + 1, modified: Date.now() / 1000 });
    },
    close: () => server.close(),
  };
}

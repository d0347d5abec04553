import { readFileSync } from 'node:fs';
import { describe, expect, test } from '@jest/globals';
import { ACCOUNT_ID, type PolicyDocument, TRUST_POLICY_FILE, evaluateTrust } from '../sandbox/ec2.js';

/**
 * The documented trust policy of the launcher role (docs/permissions/aws/trust-policy.json), with
 * its placeholders filled in as the README says, evaluated as IAM does for
 * sts:AssumeRoleWithWebIdentity with a GitHub Actions OIDC token. GitHub's subject claim is
 * `repo:<owner>/<repo>:ref:<ref>` for a job on a branch and `repo:<owner>/<repo>:pull_request` for
 * a pull request's ("Configuring OpenID Connect in Amazon Web Services" and "OpenID Connect
 * reference", https://docs.github.com/en/actions/reference/security/oidc, read 2026-12-08).
 */

const PROVIDER = `arn:aws:iam::${ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com`;

function documented(repo: string, ref: string): PolicyDocument {
  const text = readFileSync(TRUST_POLICY_FILE, 'utf8')
    .replaceAll('ACCOUNT_ID', ACCOUNT_ID)
    .replaceAll('OWNER/REPO', repo)
    .replaceAll('refs/heads/main', ref);
  return JSON.parse(text) as PolicyDocument;
}

const policy = documented('octo-org/ml', 'refs/heads/main');
const assume = (claims: Record<string, string>, over: { federated?: string; action?: string } = {}) =>
  evaluateTrust(policy, {
    federated: over.federated ?? PROVIDER,
    action: over.action ?? 'sts:AssumeRoleWithWebIdentity',
    claims: { aud: 'sts.amazonaws.com', ...claims },
  });

describe('the documented trust policy', () => {
  test('admits the workflow of the repository and branch it names', () => {
    expect(assume({ sub: 'repo:octo-org/ml:ref:refs/heads/main' })).toBe('allow');
  });

  test.each([
    ['another repository', { sub: 'repo:someone/ml:ref:refs/heads/main' }],
    ['a pull request of the same repository', { sub: 'repo:octo-org/ml:pull_request' }],
    ['another branch', { sub: 'repo:octo-org/ml:ref:refs/heads/feature' }],
    ['a tag', { sub: 'repo:octo-org/ml:ref:refs/tags/v1' }],
    ['an environment', { sub: 'repo:octo-org/ml:environment:prod' }],
    ['a wrong audience', { sub: 'repo:octo-org/ml:ref:refs/heads/main', aud: 'https://github.com/octo-org' }],
  ])('refuses %s', (_what, claims) => {
    expect(assume(claims)).toBe('implicit');
  });

  test('refuses a token from another OIDC provider, another call, and a token without a subject', () => {
    const sub = 'repo:octo-org/ml:ref:refs/heads/main';
    // The same issuer registered in another account: its claims match, its provider does not.
    const elsewhere = 'arn:aws:iam::999999999999:oidc-provider/token.actions.githubusercontent.com';
    expect(assume({ sub }, { federated: elsewhere })).toBe('implicit');
    expect(assume({ sub }, { federated: `arn:aws:iam::${ACCOUNT_ID}:oidc-provider/gitlab.com` })).toBe('implicit');
    expect(assume({ sub }, { action: 'sts:AssumeRole' })).toBe('implicit');
    expect(assume({})).toBe('implicit');
  });

  test('the evaluator reads StringLike as IAM does: a widened subject admits pull requests too', () => {
    // Why the document uses StringEquals on the full subject: `repo:octo-org/ml:*` lets any
    // pull request's workflow of the repository assume the role.
    const widened = JSON.parse(JSON.stringify(policy)) as PolicyDocument;
    const statement = (Array.isArray(widened.Statement) ? widened.Statement : [widened.Statement])[0]!;
    const equals = statement.Condition!.StringEquals!;
    statement.Condition = {
      StringEquals: { 'token.actions.githubusercontent.com:aud': equals['token.actions.githubusercontent.com:aud']! },
      StringLike: { 'token.actions.githubusercontent.com:sub': 'repo:octo-org/ml:*' },
    };
    const decide = (sub: string) =>
      evaluateTrust(widened, {
        federated: PROVIDER,
        action: 'sts:AssumeRoleWithWebIdentity',
        claims: { aud: 'sts.amazonaws.com', sub },
      });
    expect(decide('repo:octo-org/ml:pull_request')).toBe('allow');
    expect(decide('repo:octo-org/mlx:ref:refs/heads/main')).toBe('implicit');
  });
});

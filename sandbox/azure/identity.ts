/**
 * Who may call the fake Azure: Microsoft Entra ID's client-credentials sign-in (a secret, or a
 * federated client assertion), the bearer tokens it issues (and each VM's IMDS issues), and ARM's
 * role-based access check against the roles and conditions of docs/permissions/azure/ (rbac.ts).
 * https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
 * https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
 */
import type http from 'node:http';
import crypto from 'node:crypto';
import { AZURE_APPS, type AzureApp, type AzureAppName } from './catalog.js';
import { type RequestContext, covers, grants } from './rbac.js';
import { type AzureStore, type Issued, type J, b64url, lower, uuid } from './store.js';
import { ArmError, EntraError } from './validation.js';

export function jwt(store: AzureStore, claims: J): string {
  const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'HS256', kid: 'sandbox' }));
  const body = b64url(JSON.stringify(claims));
  const sig = crypto.createHmac('sha256', store.signingKey).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

export function issue(
  store: AzureStore,
  principal: string,
  appId: string,
  identity: string,
  audience: string,
  lifetimeS = 3599,
): Issued {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    aud: audience,
    iss: `https://sts.windows.net/${store.tenant}/`,
    iat: now,
    nbf: now,
    exp: now + lifetimeS,
  };
  const token = jwt(store, {
    ...claims,
    appid: appId,
    idtyp: 'app',
    oid: principal,
    sub: principal,
    tid: store.tenant,
    jti: uuid(),
  });
  const rec = { token, principal, appId, identity, audience, expiresAt: (now + lifetimeS) * 1000 };
  store.tokens.set(token, rec);
  return rec;
}

// ---------------------------------------------------------------------------------------------
// Entra ID

/** `/{tenant}/v2.0/.well-known/openid-configuration` or `/{tenant}/oauth2/v2.0/token`. */
export function entraPath(
  pathname: string,
): { op: 'openid-configuration' | 'oauth2.token'; tenant: string } | undefined {
  const m = /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|oauth2\/v2\.0\/token)$/.exec(pathname);
  if (!m) return undefined;
  return { op: m[2]!.startsWith('v2.0') ? 'openid-configuration' : 'oauth2.token', tenant: m[1]! };
}

export const unknownEntraPath = (): EntraError => new EntraError(404, 'invalid_request', 90002, 'Unknown path.');

export function unknownTenant(tenant: string): EntraError {
  return new EntraError(
    400,
    'invalid_tenant',
    90002,
    `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
  );
}

function appByClientId(id: string): [AzureAppName, AzureApp] | undefined {
  const e = Object.entries(AZURE_APPS).find(([, a]) => a.clientId === id);
  return e as [AzureAppName, AzureApp] | undefined;
}

/**
 * The token request's client authentication: the form, the grant, the app, then its secret or
 * its federated assertion. `grant` reports which (`token client_secret`, `token client_assertion`)
 * for the call log as soon as it is known.
 */
export function authenticateClient(
  store: AzureStore,
  req: http.IncomingMessage,
  form: URLSearchParams,
  grant: (op: string) => void,
): AzureAppName {
  if (req.method !== 'POST')
    throw new EntraError(405, 'invalid_request', 900561, 'The endpoint only accepts POST requests.');
  if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
    throw new EntraError(
      400,
      'invalid_request',
      900144,
      "The request body must contain the following parameter: 'grant_type'.",
    );
  }
  grant('token');
  const type = form.get('grant_type');
  if (type !== 'client_credentials')
    throw new EntraError(
      400,
      'unsupported_grant_type',
      70003,
      `The app requested an unsupported grant type '${type}'.`,
    );
  const found = appByClientId(form.get('client_id') ?? '');
  if (!found) {
    throw new EntraError(
      400,
      'unauthorized_client',
      700016,
      `Application with identifier '${form.get('client_id')}' was not found in the directory 'sandbox'.`,
    );
  }
  const [appName, app] = found;
  const assertion = form.get('client_assertion');
  if (assertion !== null) {
    grant('token client_assertion');
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      throw new EntraError(
        400,
        'invalid_request',
        50027,
        'Invalid JWT token. The client assertion type is not supported.',
      );
    }
    if (store.federated.get(assertion) !== appName) {
      throw new EntraError(
        400,
        'invalid_client',
        700213,
        'No matching federated identity record found for presented assertion subject. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.',
      );
    }
    return appName;
  }
  grant('token client_secret');
  if (form.get('client_secret') !== app.secret) {
    throw new EntraError(
      401,
      'invalid_client',
      7000215,
      'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.',
    );
  }
  return appName;
}

/** The token for an authenticated app: one `<resource>/.default` scope, and the resource must be ARM. */
export function clientToken(store: AzureStore, appName: AzureAppName, form: URLSearchParams): J {
  const scope = form.get('scope') ?? '';
  const resources = scope.split(' ').filter((s) => s.endsWith('/.default'));
  if (resources.length !== 1) {
    throw new EntraError(
      400,
      'invalid_scope',
      1002012,
      `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    );
  }
  const resource = resources[0]!.slice(0, -'/.default'.length);
  if (!store.armAudiences().includes(resource) && !store.armAudiences().includes(`${resource}/`)) {
    throw new EntraError(
      400,
      'invalid_resource',
      500011,
      `The resource principal named ${resource} was not found in the tenant named sandbox.`,
    );
  }
  const app = AZURE_APPS[appName];
  const t = issue(store, app.objectId, app.clientId, appName, `${store.url}/`);
  return { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: t.token };
}

export function openidConfiguration(store: AzureStore): J {
  const url = store.url;
  const base = `${url}/${store.tenant}`;
  return {
    token_endpoint: `${base}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${base}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${url}/oidc/userinfo`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'tid'],
    kerberos_endpoint: `${base}/kerberos`,
    tenant_region_scope: 'NA',
    cloud_instance_name: 'sandbox',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  };
}

// ---------------------------------------------------------------------------------------------
// ARM

/** The bearer token of an ARM call: one the fake issued, unexpired, for ARM's audience. */
export function authenticateBearer(store: AzureStore, req: http.IncomingMessage): Issued {
  const h = req.headers.authorization;
  if (!h) {
    throw new ArmError(
      401,
      'AuthenticationFailed',
      "Authentication failed. The 'Authorization' header is missing.",
      {},
      {
        'www-authenticate': `Bearer authorization_uri="${store.url}/${store.tenant}", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`,
      },
    );
  }
  const m = /^Bearer (.+)$/.exec(h);
  const rec = m ? store.tokens.get(m[1]!) : undefined;
  if (!rec) throw new ArmError(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
  if (rec.expiresAt < Date.now())
    throw new ArmError(
      401,
      'ExpiredAuthenticationToken',
      'The access token expiry UTC time is earlier than current UTC time.',
    );
  if (!store.armAudiences().includes(rec.audience)) {
    throw new ArmError(
      401,
      'InvalidAuthenticationTokenAudience',
      `The access token has been obtained for wrong audience or resource '${rec.audience}'. It should exactly match with one of the allowed audiences '${store.url}/','${store.url}'.`,
    );
  }
  return rec;
}

/**
 * Whether the principal may do `action` at `scope`: one of its role assignments at that scope or
 * above has a role granting the action (azure/rbac.ts), and that assignment's condition, if any,
 * holds for the request.
 */
function allowed(store: AzureStore, principal: string, action: string, scope: string, ctx: RequestContext): boolean {
  const held = [
    ...store.standing.filter((s) => s.principalId === principal),
    ...store.assignments
      .filter((r) => r.principalId === principal)
      .map((r) => ({ scope: r.scope, roleId: r.roleDefinitionId.split('/').pop() ?? '', condition: undefined })),
  ];
  return held.some((a) => {
    if (!covers(a.scope, scope)) return false;
    const role = store.roles.get(lower(a.roleId));
    if (!role || !grants(role, action)) return false;
    return a.condition ? a.condition(ctx) : true;
  });
}

export function authorize(
  store: AzureStore,
  who: Issued,
  action: string,
  scope: string,
  request?: RequestContext['request'],
): void {
  if (!allowed(store, who.principal, action, scope, { action, ...(request ? { request } : {}) })) {
    throw new ArmError(
      403,
      'AuthorizationFailed',
      `The client '${who.appId}' with object id '${who.principal}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
    );
  }
}

/**
 * ARM's asynchronous operations: a PUT answers 201 with an `Azure-AsyncOperation` URL, which
 * answers InProgress until the operation's time is up, then its result.
 * https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations
 */
import { AZURE_API_VERSIONS } from '../catalog.js';
import { type AsyncOp, type AzureStore, type OpResult, type Reply, uuid } from '../store.js';
import { checkApiVersion, notAllowed, operationNotFound } from '../validation.js';

/** Starts an operation that ends after `ms` whether or not anybody polls; returns its status URL. */
export function startOp(
  store: AzureStore,
  provider: 'Microsoft.Network' | 'Microsoft.Compute',
  location: string,
  ms: number,
  finish: AsyncOp['finish'],
): string {
  const id = uuid();
  const op: AsyncOp = { id, started: new Date(), doneAt: Date.now() + ms, finish };
  store.ops.set(id, op);
  const version = provider === 'Microsoft.Compute' ? AZURE_API_VERSIONS.compute : AZURE_API_VERSIONS.network;
  store.timers.later(ms, () => settle(op));
  return `${store.url}/subscriptions/${store.sub}/providers/${provider}/locations/${location}/operations/${id}?api-version=${version}`;
}

function settle(op: AsyncOp): OpResult {
  op.result ??= op.finish();
  return op.result;
}

/** `GET .../providers/{provider}/locations/{location}/operations/{id}`. */
export function operationStatus(
  store: AzureStore,
  q: URLSearchParams,
  method: string,
  compute: boolean,
  id: string,
): Reply {
  checkApiVersion(q, compute ? AZURE_API_VERSIONS.compute : AZURE_API_VERSIONS.network, 'locations/operations');
  if (method !== 'GET') throw notAllowed(method);
  const op = store.ops.get(id);
  if (!op) throw operationNotFound();
  if (Date.now() < op.doneAt && !op.result) {
    return {
      status: 200,
      json: { name: op.id, status: 'InProgress', startTime: op.started.toISOString() },
      headers: { 'retry-after': store.config.retryAfter },
      lroStatus: 'InProgress',
    };
  }
  const r = settle(op);
  return {
    status: 200,
    json: { name: op.id, startTime: op.started.toISOString(), endTime: new Date().toISOString(), ...r },
    lroStatus: r.status,
  };
}

/**
 * Jest setup (jest.config.js `setupFiles`): trusts the sandbox CA in this process, so in-process
 * SDK clients reach the fake Azure over https with no `tlsOptions` and no NODE_EXTRA_CA_CERTS on
 * the command line. Node 24's `tls.setDefaultCACertificates` adds it to the default roots.
 * Processes the tests start get NODE_EXTRA_CA_CERTS (sb.env) or CURL_CA_BUNDLE (VMs) instead.
 */
import fs from 'node:fs';
import tls from 'node:tls';
import { AZURE_CA_FILE } from '../sandbox/azure/catalog.js';

const ca = fs.readFileSync(AZURE_CA_FILE, 'utf8');
const roots = tls.getCACertificates('default');
if (!roots.includes(ca)) tls.setDefaultCACertificates([...roots, ca]);

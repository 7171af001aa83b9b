// A fake Sigstore public-good instance on loopback for keyless tests: Fulcio (CA + CT log),
// Rekor v1 (transparency log) and an RFC 3161 timestamp authority, each on its own port.
//
// Built on npm @sigstore/mock (installed by scripts/install-sigstore-mock; its directory comes in
// SIGSTORE_MOCK_DIR). The mock's request handlers are meant for nock; here they answer real HTTP.
// Where the mock is too thin for the real cosign, this file does the work itself:
//   * Fulcio: a root -> intermediate -> leaf chain like the production one (the mock signs leaves
//     with its root); a leaf SAN that is an email (rfc822Name) when the token has an `email`
//     claim, else the `sub` claim as a URI (the mock always writes a URI); random serials; the
//     SCT comes from the mock's CT log. The issuer (.1.1 raw, .1.8 UTF8String) and GitHub
//     claim extensions are made as the mock makes them (its `extensionFromClaims` is not
//     exported, so it is repeated below). Fulcio API v2 (cosign v3) and v1 (cosign v2).
//   * TSA: cosign sends a DER TimeStampReq (the mock only parses JSON); both are accepted.
//   * Rekor: dsse entries are stored in Rekor's canonical form (the mock stores what the client
//     proposed); the answer carries the ETag that sigstore-go needs; entries are remembered for
//     GET /api/v1/log/entries/{uuid}; GET /api/v1/log/publicKey answers too.
// The OIDC token is never verified (its claims are decoded), as in the mock.
//
// On startup it prints ONE JSON line to stdout with the URLs and the public material a
// trusted_root.json needs (all DER as base64), then logs one line per request to stderr.
// It exits on SIGTERM/SIGINT, or when its stdin closes (the test process went away).

import crypto from 'node:crypto';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

const mockDir = process.env.SIGSTORE_MOCK_DIR;
if (!mockDir) {
  console.error('SIGSTORE_MOCK_DIR is not set (run scripts/install-sigstore-mock)');
  process.exit(2);
}
const require = createRequire(path.join(mockDir, 'package.json'));
require('reflect-metadata');
const mock = require('@sigstore/mock');
const x509 = require('@peculiar/x509');
const asn1js = require('asn1js');
const pkijs = require('pkijs');
const jose = require('jose');
const { Crypto } = require('@peculiar/webcrypto');

const webcrypto = new Crypto();
x509.cryptoProvider.set(webcrypto);
const ECDSA_SHA384 = { name: 'ECDSA', hash: 'SHA-384' };
const DAY_MS = 24 * 3600 * 1000;
const OID_SCT_LIST = '1.3.6.1.4.1.11129.2.4.2';
const DEFAULT_ISSUER = 'https://fake.oidcissuer.com';

const log = (...args) => console.error(new Date().toISOString(), ...args);
const b64 = (buf) => Buffer.from(buf).toString('base64');
const der = (cert) => Buffer.from(cert.rawData);
const pem = (cert) =>
  `-----BEGIN CERTIFICATE-----\n${b64(der(cert)).replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;

async function webKeyPair(curve) {
  return webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, ['sign', 'verify']);
}

async function spki(publicKey) {
  return Buffer.from(await webcrypto.subtle.exportKey('spki', publicKey));
}

function randomSerial() {
  const bytes = crypto.randomBytes(16);
  bytes[0] &= 0x7f; // positive
  bytes[0] |= 0x01; // no leading zero byte
  return bytes.toString('hex');
}

// ---------------------------------------------------------------------------------------- Fulcio

async function makeFulcio(ctlog) {
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 365 * DAY_MS);
  const rootKeys = await webKeyPair('P-384');
  const rootName = 'CN=sigstore,O=sigstore.mock';
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: rootName,
    notBefore,
    notAfter,
    signingAlgorithm: ECDSA_SHA384,
    keys: rootKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const interKeys = await webKeyPair('P-384');
  const interName = 'CN=sigstore-intermediate,O=sigstore.mock';
  const intermediate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: interName,
    issuer: rootName,
    notBefore,
    notAfter,
    signingAlgorithm: ECDSA_SHA384,
    publicKey: interKeys.publicKey,
    signingKey: rootKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.codeSigning]),
      await x509.SubjectKeyIdentifierExtension.create(interKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  // RFC 6962 issuer_key_hash: the key that signs the leaf.
  const issuerKeyHash = crypto.createHash('sha256').update(await spki(interKeys.publicKey)).digest();

  async function issue(publicKeyDer, san, claims) {
    const now = new Date();
    const tbs = {
      serialNumber: randomSerial(),
      subject: '', // Fulcio leaves are subject-less: the identity is the (critical) SAN
      issuer: interName,
      notBefore: now,
      notAfter: new Date(now.getTime() + 10 * 60_000),
      signingAlgorithm: ECDSA_SHA384,
      publicKey: new x509.PublicKey(publicKeyDer),
      signingKey: interKeys.privateKey,
      extensions: [
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.codeSigning]),
        await x509.SubjectKeyIdentifierExtension.create(new x509.PublicKey(publicKeyDer)),
        await x509.AuthorityKeyIdentifierExtension.create(interKeys.publicKey),
        new x509.SubjectAlternativeNameExtension([san], true),
        ...claimExtensions(claims),
      ],
    };
    const precert = await x509.X509CertificateGenerator.create(tbs);
    // pkijs serializes the SCT with its own u16 length prefix (a SerializedSCT); the list adds
    // the total length in front.
    const serializedSct = Buffer.from(await ctlog.log(precert.rawData, issuerKeyHash));
    const sctList = Buffer.alloc(2 + serializedSct.length);
    sctList.writeUInt16BE(serializedSct.length, 0);
    serializedSct.copy(sctList, 2);
    tbs.extensions.push(
      new x509.Extension(OID_SCT_LIST, false, new asn1js.OctetString({ valueHex: sctList }).toBER(false)),
    );
    return x509.X509CertificateGenerator.create(tbs);
  }

  // API v2 (sigstore-go, cosign v3): JSON in, JSON out (200), the token in the body
  // (`credentials.oidcIdentityToken`) or as `Authorization: Bearer`.
  // API v1 (cosign v2): `{publicKey: {content: b64 DER or PEM}}` or `{certificateSigningRequest}`
  // in, the token as `Authorization: Bearer`; a PEM chain out (201), the SCT embedded.
  async function handle(apiVersion, body, headers) {
    const request = JSON.parse(body.toString());
    const bearer = /^Bearer (.+)$/i.exec(headers.authorization || '');
    const token = request.credentials?.oidcIdentityToken || bearer?.[1];
    if (!token) throw new Error('no credentials.oidcIdentityToken and no bearer token');
    const claims = { iss: DEFAULT_ISSUER, ...jose.decodeJwt(token) };
    let keyDer;
    if (request.publicKeyRequest) {
      keyDer = fromPem(request.publicKeyRequest.publicKey.content);
    } else if (request.publicKey?.content) {
      const decoded = Buffer.from(request.publicKey.content, 'base64');
      keyDer = decoded.toString().includes('-----BEGIN') ? fromPem(decoded.toString()) : decoded;
    } else if (request.certificateSigningRequest) {
      let csr = request.certificateSigningRequest;
      const decoded = Buffer.from(csr, 'base64').toString();
      if (decoded.includes('-----BEGIN')) csr = decoded;
      keyDer = Buffer.from(new x509.Pkcs10CertificateRequest(csr).publicKey.rawData);
    } else {
      throw new Error('no public key and no certificate signing request');
    }
    const san = claims.email
      ? { type: 'email', value: String(claims.email) }
      : { type: 'url', value: String(claims.sub || 'NO-SUBJECT') };
    const leaf = await issue(keyDer, san, claims);
    log(`fulcio: issued ${san.type}:${san.value} (issuer ${claims.iss})`);
    const chain = [leaf, intermediate, root].map(pem);
    if (apiVersion === 1) {
      return { status: 201, body: chain.join(''), type: 'application/pem-certificate-chain' };
    }
    return { status: 200, body: JSON.stringify({ signedCertificateEmbeddedSct: { chain: { certificates: chain } } }) };
  }

  return { root, intermediate, handle };
}

// The Fulcio claim extensions (as @sigstore/mock's fulcio handler makes them): legacy ones are
// the raw bytes, the others a DER UTF8String.
function claimExtensions(claims) {
  const gh = 'https://github.com';
  const ext = [];
  const raw = (oid, v) => ext.push(new x509.Extension(oid, false, Buffer.from(String(v))));
  const utf8 = (oid, v) =>
    ext.push(new x509.Extension(oid, false, new asn1js.Utf8String({ value: String(v) }).toBER(false)));
  const o = (n) => `1.3.6.1.4.1.57264.1.${n}`;
  for (const [key, value] of Object.entries(claims)) {
    switch (key) {
      case 'iss': raw(o(1), value); utf8(o(8), value); break;
      case 'event_name': raw(o(2), value); utf8(o(20), value); break;
      case 'sha': raw(o(3), value); utf8(o(13), value); break;
      case 'workflow': raw(o(4), value); break;
      case 'repository': raw(o(5), value); utf8(o(12), `${gh}/${value}`); break;
      case 'ref': raw(o(6), value); utf8(o(14), value); break;
      case 'job_workflow_ref': utf8(o(9), `${gh}/${value}`); break;
      case 'job_workflow_sha': utf8(o(10), value); break;
      case 'runner_environment': utf8(o(11), value); break;
      case 'repository_id': utf8(o(15), value); break;
      case 'repository_owner': utf8(o(16), `${gh}/${value}`); break;
      case 'repository_owner_id': utf8(o(17), value); break;
      case 'workflow_ref': utf8(o(18), `${gh}/${value}`); break;
      case 'workflow_sha': utf8(o(19), value); break;
      case 'repository_visibility': utf8(o(22), value); break;
      default: break;
    }
  }
  if (claims.repository && claims.run_id && claims.run_attempt) {
    utf8(o(21), `${gh}/${claims.repository}/actions/runs/${claims.run_id}/attempts/${claims.run_attempt}`);
  }
  return ext;
}

function fromPem(text) {
  return Buffer.from(text.replace(/-{5}(BEGIN|END) [^-]*-{5}/g, '').replace(/\s/g, ''), 'base64');
}

// ----------------------------------------------------------------------------------------- Rekor

// What Rekor v1 stores for a proposed entry (rekor pkg/types/*/Canonicalize; the log then applies
// RFC 8785, as the mock's tlog does). The mock logs the proposed entry as it came, which for
// hashedrekord is the same thing but for dsse is not (cosign v2.6 and v3 log attestations and v3
// image signatures as dsse 0.0.1). Other kinds are logged as proposed. Signatures are not checked.
const sha256hex = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');
function canonicalEntry(proposed) {
  const { apiVersion, kind, spec } = proposed;
  if (kind === 'dsse' && apiVersion === '0.0.1' && spec?.proposedContent) {
    const envelopeText = spec.proposedContent.envelope;
    const envelope = JSON.parse(envelopeText);
    const verifiers = spec.proposedContent.verifiers || [];
    if (verifiers.length !== 1) throw new Error('the fake Rekor takes dsse entries with one verifier');
    const signatures = envelope.signatures
      .map((s) => ({ signature: s.sig, verifier: verifiers[0] }))
      .sort((a, b) => (a.signature < b.signature ? -1 : a.signature > b.signature ? 1 : 0));
    return {
      apiVersion,
      kind,
      spec: {
        envelopeHash: { algorithm: 'sha256', value: sha256hex(Buffer.from(envelopeText)) },
        payloadHash: { algorithm: 'sha256', value: sha256hex(Buffer.from(envelope.payload, 'base64')) },
        signatures,
      },
    };
  }
  return proposed; // hashedrekord: the proposed entry is the canonical one
}

async function makeRekor(url) {
  const keyPair = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const tlog = await mock.initializeTLog(url, keyPair);
  const publicKeyDer = keyPair.publicKey.export({ format: 'der', type: 'spki' });
  const publicKeyPem = keyPair.publicKey.export({ format: 'pem', type: 'spki' });
  const entries = new Map(); // uuid -> entry

  async function handle(method, pathname, body) {
    if (method === 'POST' && pathname === '/api/v1/log/entries') {
      const proposed = JSON.parse(body.toString());
      const answer = await tlog.log(canonicalEntry(proposed));
      const headers = {};
      for (const [uuid, entry] of Object.entries(answer)) {
        entries.set(uuid, entry);
        // sigstore-go picks the entry out of the answer by the ETag, as Rekor sends it.
        headers.ETag = uuid;
        headers.Location = `/api/v1/log/entries/${uuid}`;
        log(`rekor: logged ${proposed.kind} ${proposed.apiVersion} entry ${entry.logIndex} (${uuid.slice(0, 12)}…)`);
      }
      return { status: 201, body: JSON.stringify(answer), headers };
    }
    if (method === 'GET' && pathname === '/api/v1/log/publicKey') {
      return { status: 200, body: publicKeyPem, type: 'application/x-pem-file' };
    }
    const m = pathname.match(/^\/api\/v1\/log\/entries\/([0-9a-f]+)$/);
    if (method === 'GET' && m) {
      const uuid = [...entries.keys()].find((k) => m[1].endsWith(k));
      if (uuid) return { status: 200, body: JSON.stringify({ [uuid]: entries.get(uuid) }) };
      return { status: 404, body: JSON.stringify({ code: 404, message: 'entry not found' }) };
    }
    if (method === 'GET' && pathname === '/api/v1/log') {
      return { status: 200, body: JSON.stringify({ treeSize: entries.size, rootHash: '', treeID: '1' }) };
    }
    return null;
  }

  return { publicKeyDer, logId: crypto.createHash('sha256').update(publicKeyDer).digest(), handle };
}

// ------------------------------------------------------------------------------------------- TSA

async function makeTsa() {
  const keyPair = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const tsa = await mock.initializeTSA(keyPair);
  const jsonHandler = mock.tsaHandler(tsa);
  // The mock encodes the nonce from a JS number; a DER request's nonce (a 64+ bit integer from
  // Go) goes into the TSTInfo as it came. The mock's serial is always DEADBEEF, a *negative*
  // DER INTEGER: each token gets a random positive one instead.
  const mockTstInfo = tsa.tstInfo.bind(tsa);
  tsa.tstInfo = (req) => {
    const dered = 'nonceInteger' in req; // else a JSON request, nonce a JS number
    const info = mockTstInfo(dered ? { ...req, nonce: 1 } : req);
    if (dered) info.nonce = req.nonceInteger; // undefined (no nonce asked for): none answered
    info.serialNumber = new asn1js.Integer({ valueHex: Buffer.from(randomSerial(), 'hex') });
    return info;
  };

  async function handle(body, contentType) {
    if (contentType.includes('json')) {
      const result = await jsonHandler.fn(body.toString());
      return { status: result.statusCode, body: result.response, type: result.contentType };
    }
    const req = pkijs.TimeStampReq.fromBER(new Uint8Array(body));
    const response = await tsa.timestamp({
      artifactHash: Buffer.from(req.messageImprint.hashedMessage.valueBlock.valueHexView),
      hashAlgorithmOID: req.messageImprint.hashAlgorithm.algorithmId,
      nonceInteger: req.nonce,
      policyOID: req.reqPolicy || '1.3.6.1.4.1.57264.2',
      certReq: req.certReq ?? false,
    });
    log(`tsa: timestamped (certReq ${req.certReq ?? false})`);
    return { status: 201, body: response, type: 'application/timestamp-reply' };
  }

  return { chain: [tsa.intCertificate, tsa.rootCertificate], handle };
}

// ---------------------------------------------------------------------------------------- server

function listen(name, route) {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const pathname = new URL(req.url, 'http://x').pathname;
      let answer;
      try {
        answer = await route(req.method, pathname, Buffer.concat(chunks), req.headers);
      } catch (e) {
        answer = { status: 400, body: JSON.stringify({ code: 400, message: String(e?.message || e) }) };
      }
      answer ??= { status: 404, body: JSON.stringify({ code: 404, message: `no route ${req.method} ${pathname}` }) };
      log(`${name}: ${req.method} ${req.url} -> ${answer.status}${answer.status >= 400 ? ` ${answer.body}` : ''}`);
      res.writeHead(answer.status, { 'Content-Type': answer.type || 'application/json', ...answer.headers });
      res.end(answer.body);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

const urlOf = (server) => `http://127.0.0.1:${server.address().port}`;

async function main() {
  const servers = [];
  let fulcio, rekor, tsa;
  const fulcioServer = await listen('fulcio', (method, p, body, headers) => {
    if (method !== 'POST') return null;
    if (p === '/api/v2/signingCert') return fulcio.handle(2, body, headers);
    if (p === '/api/v1/signingCert') return fulcio.handle(1, body, headers);
    return null;
  });
  const rekorServer = await listen('rekor', (method, p, body) => rekor.handle(method, p, body));
  const tsaServer = await listen('tsa', (method, p, body, headers) =>
    method === 'POST' && p === '/api/v1/timestamp' ? tsa.handle(body, headers['content-type'] || '') : null,
  );
  servers.push(fulcioServer, rekorServer, tsaServer);

  const ctKeys = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const ctlog = await mock.initializeCTLog(ctKeys);
  fulcio = await makeFulcio(ctlog);
  rekor = await makeRekor(urlOf(rekorServer));
  tsa = await makeTsa();

  const info = {
    startedAt: new Date().toISOString(),
    fulcio: { url: urlOf(fulcioServer), certChain: [b64(der(fulcio.intermediate)), b64(der(fulcio.root))] },
    ctlog: { publicKey: b64(ctlog.publicKey), logId: b64(ctlog.logID) },
    rekor: { url: urlOf(rekorServer), publicKey: b64(rekor.publicKeyDer), logId: b64(rekor.logId) },
    tsa: { url: `${urlOf(tsaServer)}/api/v1/timestamp`, certChain: tsa.chain.map(b64) },
  };
  process.stdout.write(`${JSON.stringify(info)}\n`);

  const stop = () => {
    for (const s of servers) s.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

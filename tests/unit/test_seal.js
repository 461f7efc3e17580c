// test_seal.js — the dashboard's sealing and signing (src/api/ui/seal.js)
// without a browser: node's WebCrypto has the same X25519, Ed25519, HMAC
// and SHA-256 as Chromium's. Known answers: RFC 8439 (ChaCha20, Poly1305,
// the AEAD) and RFC 9180 A.2.1 (HPKE, from COFFER_VECTORS_DIR); node's own
// chacha20-poly1305 on random inputs; a change body made by changeBody for
// a state signed by a test keeper, opened and checked here.
// Run: node tests/unit/test_seal.js (meson test seal).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const nodeCrypto = require('node:crypto');

const S = require(path.join(__dirname, '..', '..', 'src', 'api', 'ui', 'seal.js'));
const subtle = globalThis.crypto.subtle;
const { hex, unhex, b64url, unb64url } = S;
const utf8 = (s) => new TextEncoder().encode(s);
const vectorsDir = process.env.COFFER_VECTORS_DIR || path.join(__dirname, '..', '..', '..', 'shared', 'vectors');

const SUNSCREEN = utf8('Ladies and Gentlemen of the class of \'99: If I could offer you only one tip for the future, ' +
  'sunscreen would be it.');

test('ChaCha20 encryption, RFC 8439 2.4.2', () => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  const ct = S.chacha20(key, 1, unhex('000000000000004a00000000'), SUNSCREEN);
  assert.equal(hex(ct), '6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62' +
    'b3571639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab77937365af90bbf7' +
    '4a35be6b40b8eedf2785e42874d');
});

test('Poly1305, RFC 8439 2.5.2', () => {
  const tag = S.poly1305(unhex('85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b'),
    utf8('Cryptographic Forum Research Group'));
  assert.equal(hex(tag), 'a8061dc1305136c6c22b8baf0c0127a9');
});

test('AEAD_CHACHA20_POLY1305, RFC 8439 2.8.2', () => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i);
  const out = S.aeadSeal(key, unhex('070000004041424344454647'), unhex('50515253c0c1c2c3c4c5c6c7'), SUNSCREEN);
  assert.equal(hex(out.subarray(0, SUNSCREEN.length)), 'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6' +
    '3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad67594' +
    '5585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116');
  assert.equal(hex(out.subarray(SUNSCREEN.length)), '1ae10b594f09e26a7e902ecbd0600691');
});

// Node's OpenSSL ChaCha20-Poly1305 opens what seal.js seals, for every length around the block edges.
function nodeOpen(key, nonce, aad, sealed) {
  const d = nodeCrypto.createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  d.setAAD(aad, { plaintextLength: sealed.length - 16 });
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]);
}

test('AEAD agrees with OpenSSL\'s on random inputs', () => {
  for (const n of [0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 1000, 65536]) {
    const key = nodeCrypto.randomBytes(32), nonce = nodeCrypto.randomBytes(12);
    const aad = nodeCrypto.randomBytes(n % 37), pt = nodeCrypto.randomBytes(n);
    const sealed = S.aeadSeal(new Uint8Array(key), new Uint8Array(nonce), new Uint8Array(aad), new Uint8Array(pt));
    assert.equal(sealed.length, n + 16);
    assert.deepEqual(nodeOpen(key, nonce, aad, sealed), pt, 'length ' + n);
  }
});

test('HPKE, RFC 9180 A.2.1 (base mode, X25519, HKDF-SHA256, ChaCha20-Poly1305)', async () => {
  const [v] = JSON.parse(fs.readFileSync(path.join(vectorsDir, 'hpke-rfc9180-x25519-sha256-chacha20poly1305.json')));
  assert.equal(v.mode, 0);
  const eph = { privateKey: await S.importX25519(unhex(v.skEm)), publicRaw: unhex(v.pkEm) };
  const ctx = await S.setupS(unhex(v.pkRm), unhex(v.info), eph.privateKey, eph.publicRaw);
  assert.equal(hex(ctx.shared), v.shared_secret);
  assert.equal(hex(ctx.ksc), v.key_schedule_context);
  assert.equal(hex(ctx.secret), v.secret);
  assert.equal(hex(ctx.key), v.key);
  assert.equal(hex(ctx.baseNonce), v.base_nonce);
  for (const e of v.encryptions)
    assert.equal(hex(S.aeadSeal(ctx.key, unhex(e.nonce), unhex(e.aad), unhex(e.pt))), e.ct, 'seq ' + e.seq);
  const e0 = v.encryptions.find((e) => e.seq === 0);
  const sealed = await S.hpkeSeal(unhex(v.pkRm), unhex(v.info), unhex(e0.aad), unhex(e0.pt), eph);
  assert.equal(hex(sealed), v.enc + e0.ct);
});

// ---- coffer's texts, as the C makes them ----

test('a value\'s aad is vault.c\'s layout', () => {
  assert.equal(hex(S.valueAad('app1', 'DB', 258, 'v9')),
    '0004' + hex(utf8('app1')) + '0002' + hex(utf8('DB')) + '00000102' + '0002' + hex(utf8('v9')));
  assert.throws(() => S.valueAad('a'.repeat(256), 'DB', 1, 'v'), /longer than 255/);
});

test('the next manifest is store_manifest_next\'s text', () => {
  const id1 = '0'.repeat(24), id2 = '1'.repeat(24), id3 = 'a'.repeat(24);
  const head = 'coffer secrets manifest v1\napp a1\nversion 3\nB ' + id1 + ' d1\nD ' + id2 + ' d2\n';
  assert.equal(S.manifestNext('a1', 3, head, 4, [{ name: 'C', value_id: id3, digest: 'd3' }, { name: 'D', remove: true },
    { name: 'A_', value_id: id2, digest: 'd4' }]),
  'coffer secrets manifest v1\napp a1\nversion 4\nA_ ' + id2 + ' d4\nB ' + id1 + ' d1\nC ' + id3 + ' d3\n');
  assert.equal(S.manifestNext('a1', 0, null, 1, [{ name: 'X', remove: true }]), 'coffer secrets manifest v1\napp a1\nversion 1\n');
  for (const bad of [head.replace('version 3', 'version 2'), head.replace('\nD', '\nA'), head.slice(0, -1),
    head.replace(id2, 'x'.repeat(24))])
    assert.throws(() => S.manifestNext('a1', 3, bad, 4, []), /does not parse/);
});

test('the release statement is deployer_release_text\'s', async () => {
  const sha = (s) => nodeCrypto.createHash('sha256').update(s).digest('hex');
  assert.equal(await S.releaseText('a1', '{"cmd":["x"]}', 4, 'M'),
    'coffer release v1\napp a1\nconfig ' + sha('{"cmd":["x"]}') + '\nsecrets 4\nmanifest ' + sha('M') + '\n');
  assert.equal(await S.releaseText('a1', '{}', 0, null), 'coffer release v1\napp a1\nconfig ' + sha('{}') +
    '\nsecrets 0\nmanifest -\n');
  await assert.rejects(S.releaseText('a1', '{}', 1, null));
});

// ---- a change made for a state a test keeper signed ----

async function edKey() {
  const kp = await subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const jwk = await subtle.exportKey('jwk', kp.privateKey);
  return { kp, seed: unb64url(jwk.d, 32), pk: unb64url(jwk.x, 32) };
}
const edSign = async (k, data) =>
  new Uint8Array(await subtle.sign('Ed25519', k.kp.privateKey, typeof data === 'string' ? utf8(data) : data));

async function world() {
  const keeper = await edKey(), dep = await edKey();
  const app = 'a1b2', org = 'o1';
  const x = await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']);
  const appPk = new Uint8Array(await subtle.exportKey('raw', x.publicKey));
  const digestKey = nodeCrypto.randomBytes(32);
  const cert = { id: 'd1', org_id: org, app_id: '*', role: 'deploy' };
  const file = JSON.stringify({ kind: 'coffer deployer key v1', deployer_id: 'd1', org_id: org, app_id: '*',
    key: b64url(dep.seed), public_key: b64url(dep.pk), keeper_public_key: b64url(keeper.pk) });
  const sigOf = async (text) => ({ signer: 'd1', signature: b64url(await edSign(dep, text)), org_id: org, app_id: '*',
    role: 'deploy', public_key: b64url(dep.pk), cert: b64url(await edSign(keeper, S.certText(cert, dep.pk))) });
  const headManifest = 'coffer secrets manifest v1\napp ' + app + '\nversion 1\nOLD ' + 'c'.repeat(24) + ' ' + 'e'.repeat(32) + '\n';
  const config = '{"cmd":["/bin/true"]}';
  const state = {
    app_id: app, org_id: org, key_version: 2, next_version: 2,
    public_key: b64url(new Uint8Array([...appPk, ...await edSign(keeper, S.appKeyText(app, 2, appPk))])),
    org_signature: b64url(await edSign(keeper, S.appOrgText(app, org))),
    digest_key: b64url(digestKey),
    head: { version: 1, manifest: headManifest, signatures: [await sigOf(headManifest)] },
    release: { version: 1, config, secrets_version: 1, manifest: headManifest,
      signatures: [await sigOf(await S.releaseText(app, config, 1, headManifest))] },
  };
  return { keeper, dep, app, org, x, appPk, digestKey, file, state };
}

// hpke_open of a value, with node's X25519 and OpenSSL's AEAD: the keeper's side.
async function openValue(w, name, item) {
  const sealed = new Uint8Array(Buffer.from(item.sealed, 'base64url'));
  const enc = sealed.subarray(0, 32);
  const pub = await subtle.importKey('raw', enc, { name: 'X25519' }, false, []);
  const dh = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pub }, w.x.privateKey, 256));
  const ctx = await setupFromDh(dh, enc, w.appPk);
  return nodeOpen(Buffer.from(ctx.key), Buffer.from(ctx.baseNonce),
    vaultAad(w.app, name, w.state.key_version, item.value_id), Buffer.from(sealed.subarray(32)));
}

// vault.c's value aad, written out here (not seal.js's): u16 length and app id, u16 and name, u32 key version,
// u16 and value id, big-endian.
function vaultAad(app, name, keyVersion, valueId) {
  const s16 = (x) => { const b = Buffer.from(x); return Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]); };
  const v = Buffer.alloc(4);
  v.writeUInt32BE(keyVersion);
  return Buffer.concat([s16(app), s16(name), v, s16(valueId)]);
}

// The key schedule from a DH output, by RFC 9180's formulas with node's HMAC (independent of seal.js's).
async function setupFromDh(dh, enc, pkR) {
  const hm = (k, d) => new Uint8Array(nodeCrypto.createHmac('sha256', k.length ? k : Buffer.alloc(32)).update(d).digest());
  const cat = (...p) => Buffer.concat(p.map((x) => Buffer.from(x)));
  const u16 = (n) => Buffer.from([n >> 8, n & 255]);
  const kem = cat(utf8('KEM'), u16(32)), hpke = cat(utf8('HPKE'), u16(32), u16(1), u16(3));
  const lx = (s, salt, label, ikm) => hm(salt, cat(utf8('HPKE-v1'), s, utf8(label), ikm));
  const le = (s, prk, label, info, L) => hm(prk, cat(u16(L), utf8('HPKE-v1'), s, utf8(label), info, [1])).slice(0, L);
  const e = new Uint8Array(0);
  const shared = le(kem, lx(kem, e, 'eae_prk', dh), 'shared_secret', cat(enc, pkR), 32);
  const ksc = cat([0], lx(hpke, e, 'psk_id_hash', e), lx(hpke, e, 'info_hash', utf8(S.VAULT_INFO)));
  const secret = lx(hpke, shared, 'secret', e);
  return { key: le(hpke, secret, 'key', ksc, 32), baseNonce: le(hpke, secret, 'base_nonce', ksc, 12) };
}

test('changeBody: sealed to the app key, digests, manifest and release signed as the CLI does', async () => {
  const w = await world();
  const dep = await S.loadKeyFile(w.file);
  assert.equal(dep.sk.extractable, false);
  const value = 'p\u00e4ss word ' + 'x'.repeat(200);
  const body = await S.changeBody(w.state, dep, { NEW: value, OLD: null }, false);
  assert.deepEqual(Object.keys(body).sort(), ['key_version', 'manifest', 'release', 'secrets', 'signer', 'stage']);
  assert.equal(body.signer, 'd1');
  assert.equal(body.key_version, 2);
  assert.equal(body.secrets.OLD, null);
  const item = body.secrets.NEW;
  assert.match(item.value_id, /^[0-9a-f]{24}$/);
  assert.equal(item.digest, nodeCrypto.createHmac('sha256', w.digestKey).update(value).digest('hex').slice(0, 32));
  assert.equal((await openValue(w, 'NEW', item)).toString(), value);
  // another name in the aad does not open (the aad binds it)
  await assert.rejects(openValue(w, 'NEW2', item));
  assert.ok(!JSON.stringify(body).includes('x'.repeat(20)), 'the value is not in the body');
  const manifest = 'coffer secrets manifest v1\napp a1b2\nversion 2\nNEW ' + item.value_id + ' ' + item.digest + '\n';
  const sha = (s) => nodeCrypto.createHash('sha256').update(s).digest('hex');
  assert.equal(body.manifest.sha256, sha(manifest));
  const depPub = await subtle.importKey('raw', w.dep.pk, { name: 'Ed25519' }, false, ['verify']);
  assert.ok(await subtle.verify('Ed25519', depPub, unb64url(body.manifest.signature, 64), utf8(manifest)));
  const rel = await S.releaseText(w.app, w.state.release.config, 2, manifest);
  assert.equal(body.release.sha256, sha(rel));
  assert.ok(await subtle.verify('Ed25519', depPub, unb64url(body.release.signature, 64), utf8(rel)));
  // staged: no release statement
  assert.equal((await S.changeBody(w.state, dep, { NEW: null }, true)).release, undefined);
});

test('changeBody refuses what the keeper did not sign, and bad values', async () => {
  const w = await world();
  const dep = await S.loadKeyFile(w.file);
  const flip = (s) => s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11);
  const cases = [
    [{ public_key: flip(w.state.public_key) }, /app's public key is not signed by the keeper/],
    [{ org_id: 'o2' }, /app's org is not the one/],
    [{ head: { ...w.state.head, manifest: w.state.head.manifest.replace('OLD', 'OLE') } }, /is not signed by a deployer/],
    [{ release: { ...w.state.release, config: '{}' } }, /release v1 is not signed by a deployer/],
    [{ digest_key: 'short' }, /malformed \(digest_key\)/],
  ];
  for (const [patch, re] of cases)
    await assert.rejects(S.changeBody({ ...w.state, ...patch }, dep, { A: 'v' }, false), re);
  await assert.rejects(S.changeBody(w.state, dep, { A: 'a\u0000b' }, false), /holds a NUL byte/);
  await assert.rejects(S.changeBody(w.state, dep, { A: 'x'.repeat(65537) }, false), /larger than 65536 bytes/);
  await S.changeBody(w.state, dep, { A: 'x'.repeat(65536) }, false);
  await assert.rejects(S.changeBody(w.state, dep, { '1A': 'v' }, false), /not a secret name/);
  const other = await S.loadKeyFile(w.file.replace('"app_id":"*"', '"app_id":"zz"'));
  await assert.rejects(S.changeBody(w.state, other, { A: 'v' }, false), /does not cover app a1b2/);
});

test('loadKeyFile names what is wrong', async () => {
  const w = await world();
  const doc = JSON.parse(w.file);
  const other = await edKey();
  await assert.rejects(S.loadKeyFile('nope'), /not JSON/);
  await assert.rejects(S.loadKeyFile('{}'), /no "kind"/);
  await assert.rejects(S.loadKeyFile(JSON.stringify({ ...doc, key: 'abc' })), /"key" in the key file/);
  await assert.rejects(S.loadKeyFile(JSON.stringify({ ...doc, keeper_public_key: '' })), /"keeper_public_key"/);
  await assert.rejects(S.loadKeyFile(JSON.stringify({ ...doc, deployer_id: 'A B' })), /"deployer_id"/);
  await assert.rejects(S.loadKeyFile(JSON.stringify({ ...doc, public_key: b64url(other.pk) })), /does not match/);
});

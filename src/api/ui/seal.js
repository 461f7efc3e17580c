// seal.js — what the dashboard does before a change reaches the api, as
// the CLI's sign.c does it (docs/DASHBOARD.md "Sealing and signing"):
//
//   - HPKE base mode, DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
//     ChaCha20-Poly1305 (RFC 9180), single shot, as src/lib/hpke.c:
//     enc (32) || ciphertext || tag (16), with vault.c's info and aad;
//   - the app key, the app's org and each deployer certificate checked
//     with the keeper's public key (vault.c, deployer.c);
//   - keyed digests (digest.c), the next manifest (store_secrets.c) and
//     the release statement (deployer.c), byte for byte, signed with the
//     user's deployer key.
//
// WebCrypto gives X25519, HMAC-SHA256, SHA-256 and Ed25519; it has no
// ChaCha20-Poly1305, which is here (RFC 8439). Plain JavaScript, no
// module: the page loads it before app.js (window.CofferSeal), node's
// tests require it (module.exports).
'use strict';

const CofferSeal = (() => {
  const subtle = globalThis.crypto.subtle;
  const utf8 = new TextEncoder();

  const VAULT_INFO = 'coffer secret v2';
  const APP_KEY_CONTEXT = 'coffer app-key v1';
  const VALUE_MAX = 64 << 10;      // DOTENV_VALUE_MAX: bytes of a value
  const ID_MAX = 255;              // VAULT_ID_MAX
  const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
  const STORE_ID_RE = /^[a-z0-9_]{1,63}$/;   // deployer_id_ok

  // ---- bytes ----

  function concat(...parts) {
    let n = 0;
    for (const p of parts) n += p.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }
  const bytes = (s) => (typeof s === 'string' ? utf8.encode(s) : s);
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  function unhex(s) {
    if (!/^([0-9a-f]{2})*$/.test(s)) throw new Error('not hex');
    const out = new Uint8Array(s.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
    return out;
  }
  function b64url(b) {
    let s = '';
    for (const x of b) s += String.fromCharCode(x);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  // Strict base64url without padding, of exactly n bytes (the C's one spelling).
  function unb64url(s, n) {
    if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s) || s.length !== Math.ceil(n * 4 / 3))
      throw new Error('not ' + n + ' bytes of base64url');
    const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
    const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    if (out.length !== n || b64url(out) !== s) throw new Error('not ' + n + ' bytes of base64url');
    return out;
  }
  const u16 = (n) => new Uint8Array([n >> 8, n & 0xff]);
  const u32 = (n) => new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);

  // ---- ChaCha20-Poly1305 (RFC 8439) ----

  function rotl(v, c) { return (v << c) | (v >>> (32 - c)); }

  // One 64-byte ChaCha20 block of key (32), counter, nonce (12).
  function chachaBlock(key, counter, nonce) {
    const kv = new DataView(key.buffer, key.byteOffset, 32);
    const nv = new DataView(nonce.buffer, nonce.byteOffset, 12);
    const s = new Uint32Array(16);
    s[0] = 0x61707865; s[1] = 0x3320646e; s[2] = 0x79622d32; s[3] = 0x6b206574;
    for (let i = 0; i < 8; i++) s[4 + i] = kv.getUint32(4 * i, true);
    s[12] = counter;
    for (let i = 0; i < 3; i++) s[13 + i] = nv.getUint32(4 * i, true);
    const x = Uint32Array.from(s);
    const qr = (a, b, c, d) => {
      x[a] += x[b]; x[d] = rotl(x[d] ^ x[a], 16);
      x[c] += x[d]; x[b] = rotl(x[b] ^ x[c], 12);
      x[a] += x[b]; x[d] = rotl(x[d] ^ x[a], 8);
      x[c] += x[d]; x[b] = rotl(x[b] ^ x[c], 7);
    };
    for (let i = 0; i < 10; i++) {
      qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15);
      qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14);
    }
    const out = new Uint8Array(64);
    const ov = new DataView(out.buffer);
    for (let i = 0; i < 16; i++) ov.setUint32(4 * i, (x[i] + s[i]) >>> 0, true);
    return out;
  }

  function chacha20(key, counter, nonce, data) {
    const out = new Uint8Array(data.length);
    for (let off = 0, c = counter; off < data.length; off += 64, c++) {
      const ks = chachaBlock(key, c >>> 0, nonce);
      const n = Math.min(64, data.length - off);
      for (let i = 0; i < n; i++) out[off + i] = data[off + i] ^ ks[i];
    }
    return out;
  }

  function leNum(b) { // little-endian bytes as a BigInt
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v;
  }

  function poly1305(key, msg) {
    const P = (1n << 130n) - 5n;
    const r = leNum(key.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
    const s = leNum(key.subarray(16, 32));
    let acc = 0n;
    for (let off = 0; off < msg.length; off += 16) {
      const block = msg.subarray(off, Math.min(off + 16, msg.length));
      acc = ((acc + leNum(block) + (1n << BigInt(8 * block.length))) * r) % P;
    }
    acc = (acc + s) & ((1n << 128n) - 1n);
    const tag = new Uint8Array(16);
    for (let i = 0; i < 16; i++) { tag[i] = Number(acc & 0xffn); acc >>= 8n; }
    return tag;
  }

  const pad16 = (n) => new Uint8Array((16 - (n % 16)) % 16);
  function le64(n) { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(n), true); return b; }

  // AEAD_CHACHA20_POLY1305 encrypt: ciphertext || tag.
  function aeadSeal(key, nonce, aad, pt) {
    const otk = chachaBlock(key, 0, nonce).subarray(0, 32);
    const ct = chacha20(key, 1, nonce, pt);
    const tag = poly1305(otk, concat(aad, pad16(aad.length), ct, pad16(ct.length), le64(aad.length), le64(ct.length)));
    return concat(ct, tag);
  }

  // ---- HKDF-SHA256 and HPKE's labels (hpke.h) ----

  async function hmac(key, data) {
    // an empty HKDF salt is HashLen zero bytes (RFC 5869); WebCrypto refuses an empty HMAC key
    const k = await subtle.importKey('raw', key.length ? key : new Uint8Array(32), { name: 'HMAC', hash: 'SHA-256' },
      false, ['sign']);
    return new Uint8Array(await subtle.sign('HMAC', k, data));
  }
  async function hkdfExpand(prk, info, len) {
    let t = new Uint8Array(0), out = new Uint8Array(0);
    for (let i = 1; out.length < len; i++) {
      t = await hmac(prk, concat(t, info, new Uint8Array([i])));
      out = concat(out, t);
    }
    return out.slice(0, len);
  }
  const KEM_SUITE = concat(bytes('KEM'), u16(0x0020));
  const HPKE_SUITE = concat(bytes('HPKE'), u16(0x0020), u16(0x0001), u16(0x0003));
  const V1 = bytes('HPKE-v1');
  const labeledExtract = (suite, salt, label, ikm) => hmac(salt, concat(V1, suite, bytes(label), ikm));
  const labeledExpand = (suite, prk, label, info, len) =>
    hkdfExpand(prk, concat(u16(len), V1, suite, bytes(label), info), len);

  // The sender's key schedule from an ephemeral X25519 key pair (CryptoKey, raw public).
  async function setupS(pkR, info, skE, pkE) {
    const pub = await subtle.importKey('raw', pkR, { name: 'X25519' }, false, []);
    const dh = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pub }, skE, 256));
    if (dh.every((x) => x === 0)) throw new Error('the app key is not a usable X25519 key');
    const empty = new Uint8Array(0);
    const eae = await labeledExtract(KEM_SUITE, empty, 'eae_prk', dh);
    const shared = await labeledExpand(KEM_SUITE, eae, 'shared_secret', concat(pkE, pkR), 32);
    const ksc = concat(new Uint8Array([0]), await labeledExtract(HPKE_SUITE, empty, 'psk_id_hash', empty),
      await labeledExtract(HPKE_SUITE, empty, 'info_hash', info));
    const secret = await labeledExtract(HPKE_SUITE, shared, 'secret', empty);
    return {
      shared, ksc, secret,
      key: await labeledExpand(HPKE_SUITE, secret, 'key', ksc, 32),
      baseNonce: await labeledExpand(HPKE_SUITE, secret, 'base_nonce', ksc, 12),
    };
  }

  // An X25519 private key of 32 raw bytes as a CryptoKey (PKCS#8, RFC 8410): the tests' fixed keys.
  const X25519_PKCS8 = unhex('302e020100300506032b656e04220420');
  const importX25519 = (sk) => subtle.importKey('pkcs8', concat(X25519_PKCS8, sk), { name: 'X25519' }, false,
    ['deriveBits']);

  // hpke_seal: enc || ct || tag of pt to pkR (32 raw bytes). eph: a fixed ephemeral
  // {privateKey, publicRaw} (tests); otherwise a fresh one.
  async function hpkeSeal(pkR, info, aad, pt, eph) {
    if (!eph) {
      const kp = await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']);
      eph = { privateKey: kp.privateKey, publicRaw: new Uint8Array(await subtle.exportKey('raw', kp.publicKey)) };
    }
    const ctx = await setupS(pkR, info, eph.privateKey, eph.publicRaw);
    try {
      return concat(eph.publicRaw, aeadSeal(ctx.key, ctx.baseNonce, aad, pt));
    } finally {
      ctx.key.fill(0); ctx.secret.fill(0); ctx.shared.fill(0);
    }
  }

  // ---- coffer's texts ----

  function idBytes(s, what) {
    const b = bytes(s);
    if (!b.length || b.length > ID_MAX) throw new Error(what + ' is empty or longer than ' + ID_MAX + ' bytes');
    return concat(u16(b.length), b);
  }
  // vault.c's value aad: u16 app id, u16 name, u32 key version, u16 value id.
  const valueAad = (appId, name, keyVersion, valueId) =>
    concat(idBytes(appId, 'the app id'), idBytes(name, 'the name'), u32(keyVersion), idBytes(valueId, 'the value id'));
  // vault.c's app key statement: context and its NUL, u16 app id, u32 version, the key.
  const appKeyText = (appId, keyVersion, pk) =>
    concat(bytes(APP_KEY_CONTEXT), new Uint8Array([0]), idBytes(appId, 'the app id'), u32(keyVersion), pk);
  const appOrgText = (appId, orgId) => 'coffer app org v1\napp ' + appId + '\norg ' + orgId + '\n';
  const certText = (c, pk) => 'coffer deployer v1\nid ' + c.id + '\norg ' + c.org_id + '\napp ' + c.app_id +
    '\nrole ' + c.role + '\nkey ' + b64url(pk) + '\n';

  async function sha256hex(data) { return hex(new Uint8Array(await subtle.digest('SHA-256', bytes(data)))); }

  // deployer_release_text: manifest null for secrets version 0.
  async function releaseText(appId, config, secretsVersion, manifest) {
    if (!STORE_ID_RE.test(appId) || (secretsVersion === 0) !== (manifest === null))
      throw new Error('cannot make the release statement');
    return 'coffer release v1\napp ' + appId + '\nconfig ' + await sha256hex(config) + '\nsecrets ' +
      secretsVersion + '\nmanifest ' + (manifest === null ? '-' : await sha256hex(manifest)) + '\n';
  }

  // store_manifest_next: the head's items (its strict text) with changes
  // [{name, value_id, digest} or {name, remove: true}] applied in order.
  function manifestNext(appId, headVersion, headManifest, version, changes) {
    const header = (v) => 'coffer secrets manifest v1\napp ' + appId + '\nversion ' + v + '\n';
    const items = new Map();
    if (headVersion) {
      const h = header(headVersion);
      if (typeof headManifest !== 'string' || !headManifest.startsWith(h)) throw new Error('the head manifest does not parse');
      let prev = null;
      for (const line of headManifest.slice(h.length).split('\n').slice(0, -1)) {
        const m = line.match(/^([!-~]+) ([0-9a-f]{24}) ([!-~]+)$/);
        if (!m || (prev !== null && prev >= m[1])) throw new Error('the head manifest does not parse');
        items.set(m[1], m[2] + ' ' + m[3]);
        prev = m[1];
      }
      if (!headManifest.endsWith('\n') && headManifest !== h) throw new Error('the head manifest does not parse');
    }
    for (const c of changes) {
      if (c.remove) items.delete(c.name);
      else items.set(c.name, c.value_id + ' ' + c.digest);
    }
    const names = Array.from(items.keys()).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return header(version) + names.map((n) => n + ' ' + items.get(n) + '\n').join('');
  }

  // ---- keys ----

  const ED25519_PKCS8 = unhex('302e020100300506032b657004220420');

  // The file `coffer deployers export` writes, parsed into keys: the
  // deployer's signing key as a non-extractable CryptoKey, the keeper's
  // public key. Throws an Error naming the field that is wrong.
  async function loadKeyFile(text) {
    let doc;
    try { doc = JSON.parse(text); } catch (e) { throw new Error('not a coffer deployer key file (not JSON)'); }
    if (!doc || doc.kind !== 'coffer deployer key v1') throw new Error('not a coffer deployer key file (no "kind": "coffer deployer key v1")');
    for (const f of ['deployer_id', 'org_id', 'app_id'])
      if (typeof doc[f] !== 'string' || !(STORE_ID_RE.test(doc[f]) || (f === 'app_id' && doc[f] === '*')))
        throw new Error('"' + f + '" in the key file is not an id');
    let seed, keeperPk, pk;
    try { seed = unb64url(doc.key, 32); } catch (e) { throw new Error('"key" in the key file is not 32 bytes of base64url'); }
    try { pk = unb64url(doc.public_key, 32); } catch (e) { throw new Error('"public_key" in the key file is not 32 bytes of base64url'); }
    try { keeperPk = unb64url(doc.keeper_public_key, 32); } catch (e) { throw new Error('"keeper_public_key" in the key file is not 32 bytes of base64url'); }
    const pkcs8 = concat(ED25519_PKCS8, seed);
    seed.fill(0);
    let sk;
    try {
      sk = await subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
    } finally {
      pkcs8.fill(0);
    }
    const pub = await subtle.importKey('raw', pk, { name: 'Ed25519' }, false, ['verify']);
    // the key must be the one named: a signature over a fixed text checks with public_key
    const probe = bytes('coffer dashboard key check');
    if (!await subtle.verify('Ed25519', pub, await subtle.sign('Ed25519', sk, probe), probe))
      throw new Error('"key" in the key file does not match its "public_key"');
    return {
      id: doc.deployer_id, org_id: doc.org_id, app_id: doc.app_id, sk, pk,
      keeper: await subtle.importKey('raw', keeperPk, { name: 'Ed25519' }, false, ['verify']),
    };
  }

  const verify = (pubKey, sig, text) => subtle.verify('Ed25519', pubKey, sig, bytes(text));
  async function verifyRaw(pkRaw, sig, text) {
    const k = await subtle.importKey('raw', pkRaw, { name: 'Ed25519' }, false, ['verify']);
    return verify(k, sig, text);
  }
  const covers = (certOrg, certApp, appOrg, appId) => certOrg === appOrg && (certApp === '*' || certApp === appId);

  // ---- sign.c's steps ----

  const NO_TRUST = 'the api\'s answer cannot be trusted, nothing was sent';

  // state_read's checks of GET .../secrets/sealing with the keeper's key.
  async function checkState(st, dep) {
    const bad = (what) => new Error('the api\'s sealing state is malformed (' + what + ')');
    if (!st || !STORE_ID_RE.test(st.app_id || '') || !STORE_ID_RE.test(st.org_id || '')) throw bad('app or org id');
    if (!Number.isInteger(st.key_version) || st.key_version < 1 || st.key_version > 0xffffffff) throw bad('key_version');
    if (!Number.isInteger(st.next_version) || st.next_version < 1) throw bad('next_version');
    let key, orgSig, digestKey;
    try { key = unb64url(st.public_key, 96); } catch (e) { throw bad('public_key'); }
    try { orgSig = unb64url(st.org_signature, 64); } catch (e) { throw bad('org_signature'); }
    try { digestKey = unb64url(st.digest_key, 32); } catch (e) { throw bad('digest_key'); }
    const pk = key.slice(0, 32);
    if (!await verify(dep.keeper, key.slice(32), appKeyText(st.app_id, st.key_version, pk)))
      throw new Error('the app\'s public key is not signed by the keeper of your key file: ' + NO_TRUST);
    if (!await verify(dep.keeper, orgSig, appOrgText(st.app_id, st.org_id)))
      throw new Error('the app\'s org is not the one the keeper of your key file bound it to: ' + NO_TRUST);
    if (!covers(dep.org_id, dep.app_id, st.org_id, st.app_id))
      throw new Error('your deployer key (org ' + dep.org_id + ', app ' + dep.app_id + ') does not cover app ' +
        st.app_id + ' of org ' + st.org_id + ': nothing was sent');
    return { pk, digestKey };
  }

  // signed_by_deployer: one of sigs is over text by a deployer the keeper certified for the app.
  async function signedByDeployer(st, dep, sigs, text) {
    for (const s of Array.isArray(sigs) ? sigs : []) {
      try {
        if (!covers(s.org_id, s.app_id, st.org_id, st.app_id) || !STORE_ID_RE.test(s.signer) ||
            !(s.role === 'admin' || s.role === 'deploy'))
          continue;
        const pk = unb64url(s.public_key, 32);
        const c = { id: s.signer, org_id: s.org_id, app_id: s.app_id, role: s.role };
        if (await verify(dep.keeper, unb64url(s.cert, 64), certText(c, pk)) &&
            await verifyRaw(pk, unb64url(s.signature, 64), text))
          return true;
      } catch (e) { /* a malformed entry is not a signature */ }
    }
    return false;
  }

  async function sign(dep, text) {
    const sig = new Uint8Array(await subtle.sign('Ed25519', dep.sk, bytes(text)));
    return { sha256: await sha256hex(text), signature: b64url(sig) };
  }

  // The body of POST /v1/apps/:app/secrets for changes {NAME: value string or null},
  // as the CLI's fill_change makes it. st: the sealing state, dep: loadKeyFile's.
  async function changeBody(st, dep, changes, stage) {
    const { pk, digestKey } = await checkState(st, dep);
    const head = st.head || {}, rel = st.release;
    const roll = !stage && rel !== null && typeof rel === 'object';
    if (head.version && !await signedByDeployer(st, dep, head.signatures, head.manifest))
      throw new Error('secrets version ' + head.version + ' is not signed by a deployer of this app: refusing to sign it');
    if (roll) {
      const text = await releaseText(st.app_id, rel.config, rel.secrets_version, rel.manifest === undefined ? null : rel.manifest);
      if (!await signedByDeployer(st, dep, rel.signatures, text))
        throw new Error('release v' + rel.version + ' is not signed by a deployer of this app: refusing to sign its config');
    }
    const body = { secrets: {}, stage: !!stage, key_version: st.key_version };
    const list = [];
    const mac = await subtle.importKey('raw', digestKey, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    digestKey.fill(0);
    for (const name of Object.keys(changes)) {
      if (!NAME_RE.test(name)) throw new Error('\'' + name + '\' is not a secret name (letters, digits, _; not starting with a digit)');
      const v = changes[name];
      if (v === null) { body.secrets[name] = null; list.push({ name, remove: true }); continue; }
      const value = bytes(v);
      try {
        if (value.length > VALUE_MAX) throw new Error('the value of \'' + name + '\' is larger than ' + VALUE_MAX + ' bytes');
        if (value.includes(0)) throw new Error('the value of \'' + name + '\' holds a NUL byte');
        const valueId = hex(globalThis.crypto.getRandomValues(new Uint8Array(12)));
        const sealed = await hpkeSeal(pk, bytes(VAULT_INFO), valueAad(st.app_id, name, st.key_version, valueId), value);
        const digest = hex(new Uint8Array(await subtle.sign('HMAC', mac, value)).subarray(0, 16));
        body.secrets[name] = { sealed: b64url(sealed), digest, value_id: valueId };
        list.push({ name, value_id: valueId, digest });
      } finally {
        value.fill(0);
      }
    }
    const manifest = manifestNext(st.app_id, head.version || 0, head.manifest, st.next_version, list);
    body.signer = dep.id;
    body.manifest = await sign(dep, manifest);
    if (roll) body.release = await sign(dep, await releaseText(st.app_id, rel.config, st.next_version, manifest));
    return body;
  }

  return {
    // the page's
    loadKeyFile, changeBody,
    // the tests'
    aeadSeal, chacha20, poly1305, hpkeSeal, setupS, importX25519, valueAad, manifestNext, releaseText,
    appKeyText, appOrgText, certText, hex, unhex, b64url, unb64url, VAULT_INFO,
  };
})();

if (typeof module !== 'undefined') module.exports = CofferSeal;

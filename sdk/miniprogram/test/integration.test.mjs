// The SDK against a real `idp serve` and the fake WeChat, over loopback HTTP. Started by
// tests/sdk/test_miniprogram_sdk.py, which sets IDP_SDK_ISSUER, IDP_SDK_CLIENT_ID,
// IDP_SDK_APPID and IDP_SDK_FAKE_WECHAT, and for the second factor IDP_SDK_MFA_USER (a user with
// an authenticator app), IDP_SDK_TOTP_SECRET and IDP_SDK_RECOVERY_CODE; skipped when run alone
// without them.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';

import { createIdp, IdpError } from '../index.mjs';
import { makeWx } from './wx-stub.mjs';

const { IDP_SDK_ISSUER: ISSUER, IDP_SDK_CLIENT_ID: CLIENT_ID, IDP_SDK_APPID: APPID,
  IDP_SDK_FAKE_WECHAT: FAKE, IDP_SDK_MFA_USER: MFA_USER, IDP_SDK_TOTP_SECRET: TOTP_SECRET,
  IDP_SDK_RECOVERY_CODE: RECOVERY_CODE } = process.env;
const skip = ISSUER ? false : 'run by tests/sdk/test_miniprogram_sdk.py (needs a served IdP)';

async function fake(path, body) {
  const response = await fetch(`${FAKE}/__fake__${path}`, {
    method: body ? 'POST' : 'GET', headers: { 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.ok(response.ok, `${path}: ${response.status}`);
  return response.json();
}

function miniProgram(user, options = {}) {
  const wx = makeWx({ fetchBase: ISSUER,
    codes: async () => (await fake('/js_codes', { appid: APPID, user })).code });
  return { wx, idp: createIdp({ issuer: ISSUER, clientId: CLIENT_ID, wx,
    scope: 'openid profile phone offline_access', ...options }) };
}

// RFC 6238 (SHA-1, 30 s, 6 digits), what the user's authenticator app shows.
function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bits = [...text.replace(/=+$/, '')]
    .map((c) => alphabet.indexOf(c).toString(2).padStart(5, '0')).join('');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

function totp(secret, step = Math.floor(Date.now() / 30000)) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[19] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1e6).padStart(6, '0');
}

function wrongCode(secret) {
  const now = Math.floor(Date.now() / 30000);
  const near = [now - 1, now, now + 1, now + 2].map((step) => totp(secret, step));
  return ['000000', '111111', '222222'].find((code) => !near.includes(code));
}

function idTokenClaims(idToken) {
  return JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());
}

test('login, refresh, phone binding and logout against the IdP', { skip }, async () => {
  const { idp } = miniProgram('sdk-alice');
  const tokens = await idp.login();
  assert.ok(tokens.access_token && tokens.refresh_token && tokens.id_token);
  assert.equal(await idp.accessToken(), tokens.access_token);

  const refreshed = await idp.refresh();
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token); // rotated, and kept

  const { code } = await fake('/phone_codes', { appid: APPID, phone: '13800138123' });
  const binding = await idp.bindPhone(code);
  assert.equal(binding.phone_number, '+8613800138123');
  assert.equal(binding.merged, false);
  const used = await idp.bindPhone(code).catch((e) => e); // a phone code is single-use
  assert.ok(used instanceof IdpError);
  assert.equal(used.code, 'invalid_grant');

  const { refresh_token: last } = idp.tokens();
  await idp.logout();
  assert.equal(idp.tokens(), null);
  const reuse = await fetch(`${ISSUER}/oauth/token`, { method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: last,
      client_id: CLIENT_ID }) });
  assert.equal((await reuse.json()).error, 'invalid_grant'); // revoked
});

test('confirmScan signs a waiting browser in (CONTRACT §8)', { skip }, async () => {
  // The computer's browser: shows the code (its session cookie binds the ticket).
  const shown = await fetch(`${ISSUER}/login/scan/code.png`);
  assert.equal(shown.status, 200);
  assert.equal(shown.headers.get('content-type'), 'image/png');
  const cookie = shown.headers.get('set-cookie').split(';')[0];
  const { wxacodes } = await fake('/wxacodes');
  const scene = wxacodes.at(-1).scene;

  const { idp } = miniProgram('sdk-bob');
  await idp.login();
  const info = await idp.scanInfo(scene);
  assert.equal(info.status, 'scanned');
  assert.ok(info.site && info.browser && info.network);
  assert.deepEqual(await idp.confirmScan(scene, 'confirm'), { status: 'confirmed' });
  const again = await idp.confirmScan(scene, 'refuse').catch((e) => e);
  assert.equal(again.code, 'already_answered');
  assert.equal(again.status, 409);
  const unknown = await idp.confirmScan('no-such-ticket', 'confirm').catch((e) => e);
  assert.equal(unknown.status, 404);

  const status = await fetch(`${ISSUER}/login/scan/status?seen=scanned`, { headers: { cookie } });
  assert.equal((await status.json()).status, 'confirmed');
});

test('a second factor: mfa_required, a wrong code, the TOTP; then a recovery code, once', { skip: skip || !TOTP_SECRET }, async () => {
  const prompts = [];
  const answers = [{ otp: wrongCode(TOTP_SECRET) }, { otp: totp(TOTP_SECRET) }];
  const { idp } = miniProgram(MFA_USER, {
    onSecondFactor: async (prompt) => { prompts.push(prompt); return answers.shift(); } });
  const tokens = await idp.login();
  assert.deepEqual(prompts.map((p) => p.factors), [['otp', 'recovery_code'], ['otp', 'recovery_code']]);
  assert.deepEqual(prompts.map((p) => p.attemptsLeft), [null, 4]);
  assert.equal(prompts[1].error.code, 'invalid_grant');
  let claims = idTokenClaims(tokens.id_token);
  assert.deepEqual(claims.amr, ['wechat', 'otp', 'mfa']);
  assert.equal(claims.acr, 'urn:idp:acr:mfa');
  claims = idTokenClaims((await idp.refresh()).id_token); // refresh keeps how the user signed in
  assert.deepEqual(claims.amr, ['wechat', 'otp', 'mfa']);

  const recovered = miniProgram(MFA_USER, { onSecondFactor: async () => ({ recoveryCode: RECOVERY_CODE }) });
  assert.equal(idTokenClaims((await recovered.idp.login()).id_token).acr, 'urn:idp:acr:mfa');

  const reused = miniProgram(MFA_USER, {
    onSecondFactor: async ({ error }) => (error ? null : { recoveryCode: RECOVERY_CODE }) });
  const refused = await reused.idp.login().catch((e) => e);
  assert.ok(refused instanceof IdpError);
  assert.equal(refused.code, 'mfa_required'); // spent: refused, asked again, and the user gave up
  assert.equal(reused.idp.tokens(), null);

  const untold = await miniProgram(MFA_USER).idp.login().catch((e) => e);
  assert.deepEqual([untold.code, untold.status], ['mfa_required', 403]);
});

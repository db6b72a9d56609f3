// The SDK against a real `idp serve` and the fake WeChat, over loopback HTTP. Started by
// tests/sdk/test_miniprogram_sdk.py, which sets IDP_SDK_ISSUER, IDP_SDK_CLIENT_ID,
// IDP_SDK_APPID and IDP_SDK_FAKE_WECHAT; skipped when run alone without them.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createIdp, IdpError } from '../index.mjs';
import { makeWx } from './wx-stub.mjs';

const { IDP_SDK_ISSUER: ISSUER, IDP_SDK_CLIENT_ID: CLIENT_ID, IDP_SDK_APPID: APPID,
  IDP_SDK_FAKE_WECHAT: FAKE } = process.env;
const skip = ISSUER ? false : 'run by tests/sdk/test_miniprogram_sdk.py (needs a served IdP)';

async function fake(path, body) {
  const response = await fetch(`${FAKE}/__fake__${path}`, {
    method: body ? 'POST' : 'GET', headers: { 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.ok(response.ok, `${path}: ${response.status}`);
  return response.json();
}

function miniProgram(user) {
  const wx = makeWx({ fetchBase: ISSUER,
    codes: async () => (await fake('/js_codes', { appid: APPID, user })).code });
  return { wx, idp: createIdp({ issuer: ISSUER, clientId: CLIENT_ID, wx,
    scope: 'openid profile phone offline_access' }) };
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

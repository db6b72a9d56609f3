// Unit tests of the SDK against a scripted `wx` (node --test). The HTTP test against a real
// `idp serve` and the fake WeChat is integration.test.mjs, run by tests/sdk/.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import sdk, { createIdp, IdpError, NetworkError, WeChatLoginError } from '../index.mjs';
import { form, makeWx } from './wx-stub.mjs';

const ISSUER = 'https://idp.example.com';
const CLIENT_ID = 'mini-client';

function tokenAnswer(n, extra = {}) {
  return { data: { access_token: `at-${n}`, refresh_token: `rt-${n}`, id_token: `id-${n}`,
    token_type: 'Bearer', expires_in: 3600, scope: 'openid phone offline_access', ...extra } };
}

function client(wx, clock = { now: 1_000_000 }) {
  return createIdp({ issuer: `${ISSUER}/`, clientId: CLIENT_ID, wx, now: () => clock.now });
}

test('login sends the js_code to the token endpoint as CONTRACT §5 says and stores the tokens', async () => {
  const wx = makeWx({ routes: { 'POST /oauth/token': () => tokenAnswer(1) } });
  const tokens = await client(wx).login();
  assert.equal(tokens.access_token, 'at-1');
  const [request] = wx.requests;
  assert.equal(request.header['content-type'], 'application/x-www-form-urlencoded');
  assert.deepEqual(form(request), {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    client_id: CLIENT_ID,
    subject_token: 'js-code-1',
    subject_token_type: 'urn:wechat:params:oauth:token-type:js_code',
    scope: 'openid profile phone offline_access',
  });
  assert.equal(wx.storage.get('idp.tokens').refresh_token, 'rt-1');
  assert.equal(wx.storage.get('idp.tokens').expires_at, 1_000_000 + 3600 * 1000);
});

test('accessToken serves a fresh token from storage without a request', async () => {
  const wx = makeWx({ routes: { 'POST /oauth/token': () => tokenAnswer(1) } });
  const idp = client(wx);
  await idp.login();
  assert.equal(await idp.accessToken(), 'at-1');
  assert.equal(wx.requests.length, 1);
});

test('accessToken refreshes ahead of expiry, once for many callers, keeping the rotated token', async () => {
  let n = 1;
  const wx = makeWx({ routes: { 'POST /oauth/token': () => tokenAnswer(n++) } });
  const clock = { now: 1_000_000 };
  const idp = client(wx, clock);
  await idp.login();
  clock.now += (3600 - 30) * 1000; // 30 s left: inside the 60 s margin
  const tokens = await Promise.all([idp.accessToken(), idp.accessToken(), idp.accessToken()]);
  assert.deepEqual(tokens, ['at-2', 'at-2', 'at-2']);
  const refreshes = wx.requests.filter((r) => form(r).grant_type === 'refresh_token');
  assert.equal(refreshes.length, 1);
  assert.equal(form(refreshes[0]).refresh_token, 'rt-1');
  assert.equal(wx.storage.get('idp.tokens').refresh_token, 'rt-2');
});

test('a dead refresh token (invalid_grant) falls back to a silent wx.login', async () => {
  const wx = makeWx({ routes: { 'POST /oauth/token': (r) => (form(r).grant_type === 'refresh_token'
    ? { statusCode: 400, data: { error: 'invalid_grant' } } : tokenAnswer(form(r).subject_token)) } });
  const clock = { now: 0 };
  const idp = client(wx, clock);
  await idp.login();
  clock.now += 3600 * 1000;
  assert.equal(await idp.accessToken(), 'at-js-code-2');
});

test('typed errors: 503 with Retry-After, no answer at all, wx.login failing', async () => {
  const wx = makeWx({ routes: { 'POST /oauth/token': () => ({ statusCode: 503,
    header: { 'retry-after': '5' },
    data: { error: 'temporarily_unavailable', error_description: 'WeChat is busy' } }) } });
  const busy = await client(wx).login().catch((e) => e);
  assert.ok(busy instanceof IdpError);
  assert.deepEqual([busy.code, busy.status, busy.retryAfter], ['temporarily_unavailable', 503, 5]);

  const down = makeWx({ routes: { 'POST /oauth/token': () => 'fail' } });
  const offline = await client(down).login().catch((e) => e);
  assert.ok(offline instanceof NetworkError && offline instanceof IdpError);
  assert.equal(offline.code, 'network_error');

  const noWeChat = makeWx();
  noWeChat.loginFails = true;
  const failed = await client(noWeChat).login().catch((e) => e);
  assert.ok(failed instanceof WeChatLoginError);
  assert.equal(noWeChat.requests.length, 0);
});

test('bindPhone sends the code with the bearer token and keeps the tokens of a merge (CONTRACT §6)', async () => {
  const wx = makeWx({ routes: {
    'POST /oauth/token': () => tokenAnswer(1),
    'POST /wechat/phone': () => ({ data: { sub: 'survivor', phone_number: '+8613800138000',
      merged: true, ...tokenAnswer(9).data } }),
  } });
  const idp = client(wx);
  await idp.login();
  const binding = await idp.bindPhone('phone-code');
  assert.deepEqual(binding, { sub: 'survivor', phone_number: '+8613800138000', merged: true });
  const call = wx.requests.at(-1);
  assert.equal(call.header.Authorization, 'Bearer at-1');
  assert.deepEqual(JSON.parse(call.data), { code: 'phone-code' });
  assert.equal(await idp.accessToken(), 'at-9');
  assert.equal(wx.storage.get('idp.tokens').refresh_token, 'rt-9');
  await assert.rejects(idp.bindPhone(''), (e) => e.code === 'invalid_request');
});

test('a revoked access token is refreshed once and the call retried', async () => {
  let n = 1;
  let phoneCalls = 0;
  const wx = makeWx({ routes: {
    'POST /oauth/token': () => tokenAnswer(n++),
    'POST /wechat/phone': (r) => {
      phoneCalls += 1;
      return r.header.Authorization === 'Bearer at-1'
        ? { statusCode: 401, data: { error: 'invalid_token' } }
        : { data: { sub: 's', phone_number: '+8613800138000', merged: false } };
    },
  } });
  const idp = client(wx);
  await idp.login();
  assert.equal((await idp.bindPhone('c')).sub, 's');
  assert.equal(phoneCalls, 2);
});

test('confirmScan answers CONTRACT §8 and maps 404 and 409 to typed errors', async () => {
  const answers = { 'good-scene': { data: { status: 'confirmed' } },
    gone: { statusCode: 404, data: { error: 'not_found' } },
    done: { statusCode: 409, data: { error: 'already_answered', status: 'refused' } } };
  const routes = { 'POST /oauth/token': () => tokenAnswer(1) };
  for (const scene of Object.keys(answers)) {
    routes[`POST /wechat/scan/${scene}`] = () => answers[scene];
  }
  routes['GET /wechat/scan/good-scene'] = () => ({ data: { status: 'scanned', browser: 'Chrome 120 on Linux' } });
  const wx = makeWx({ routes });
  const idp = client(wx);
  await idp.login();
  assert.equal((await idp.scanInfo('good-scene')).browser, 'Chrome 120 on Linux');
  assert.deepEqual(await idp.confirmScan('good-scene', 'confirm'), { status: 'confirmed' });
  assert.deepEqual(JSON.parse(wx.requests.at(-1).data), { decision: 'confirm' });
  await assert.rejects(idp.confirmScan('gone', 'confirm'), (e) => e.code === 'not_found' && e.status === 404);
  await assert.rejects(idp.confirmScan('done', 'refuse'), (e) => e.code === 'already_answered' && e.status === 409);
  const before = wx.requests.length;
  await assert.rejects(idp.confirmScan('good-scene', 'yes'), (e) => e.code === 'invalid_request');
  assert.equal(wx.requests.length, before);
});

test('scenes are path-encoded', async () => {
  const wx = makeWx({ routes: { 'POST /oauth/token': () => tokenAnswer(1),
    'POST /wechat/scan/a%2Fb': () => ({ data: { status: 'refused' } }) } });
  const idp = client(wx);
  await idp.login();
  assert.deepEqual(await idp.confirmScan('a/b', 'refuse'), { status: 'refused' });
});

test('logout revokes the refresh token (RFC 7009) and forgets the tokens, even offline', async () => {
  const wx = makeWx({ routes: { 'POST /oauth/token': () => tokenAnswer(1),
    'POST /oauth/revoke': () => ({ data: '' }) } });
  const idp = client(wx);
  await idp.login();
  await idp.logout();
  assert.deepEqual(form(wx.requests.at(-1)), { token: 'rt-1', token_type_hint: 'refresh_token',
    client_id: CLIENT_ID });
  assert.equal(idp.tokens(), null);

  const offline = makeWx({ routes: { 'POST /oauth/token': () => tokenAnswer(1),
    'POST /oauth/revoke': () => 'fail' } });
  const other = client(offline);
  await other.login();
  await other.logout();
  assert.equal(other.tokens(), null);
});

const MFA_TOKEN_TYPE = 'urn:idp:params:oauth:token-type:mfa_token';

function mfaRequired() {
  return { statusCode: 403, data: { error: 'mfa_required', error_description: 'A second factor',
    mfa_token: 'mfa-secret-1', factors: ['otp', 'recovery_code'] } };
}

test('mfa_required asks onSecondFactor for a code and completes the exchange with the mfa_token', async () => {
  const prompts = [];
  const wx = makeWx({ routes: { 'POST /oauth/token': (r) => (form(r).subject_token_type === MFA_TOKEN_TYPE
    ? tokenAnswer('mfa') : mfaRequired()) } });
  const idp = createIdp({ issuer: ISSUER, clientId: CLIENT_ID, wx,
    onSecondFactor: async (prompt) => { prompts.push(prompt); return { otp: '123456' }; } });
  const tokens = await idp.login();
  assert.equal(tokens.access_token, 'at-mfa');
  assert.deepEqual(prompts, [{ factors: ['otp', 'recovery_code'], attemptsLeft: null, error: null }]);
  assert.deepEqual(form(wx.requests[1]), {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    client_id: CLIENT_ID,
    subject_token: 'mfa-secret-1',
    subject_token_type: MFA_TOKEN_TYPE,
    otp: '123456',
  });
  assert.equal(wx.storage.get('idp.tokens').refresh_token, 'rt-mfa');
});

test('a wrong code asks again with attemptsLeft; a recovery code is sent as recovery_code', async () => {
  const prompts = [];
  const wx = makeWx({ routes: { 'POST /oauth/token': (r) => {
    const sent = form(r);
    if (sent.subject_token_type !== MFA_TOKEN_TYPE) return mfaRequired();
    if (sent.otp === '000000') {
      return { statusCode: 400, data: { error: 'invalid_grant', attempts_left: 4 } };
    }
    return tokenAnswer('rc');
  } } });
  const answers = [{ otp: '000000' }, { recoveryCode: 'abcde-12345' }];
  const idp = createIdp({ issuer: ISSUER, clientId: CLIENT_ID, wx,
    onSecondFactor: async (prompt) => { prompts.push(prompt); return answers.shift(); } });
  assert.equal((await idp.login()).access_token, 'at-rc');
  assert.equal(prompts.length, 2);
  assert.equal(prompts[1].attemptsLeft, 4);
  assert.ok(prompts[1].error instanceof IdpError && prompts[1].error.code === 'invalid_grant');
  const last = form(wx.requests.at(-1));
  assert.equal(last.recovery_code, 'abcde-12345');
  assert.equal(last.otp, undefined);
});

test('a dead mfa_token (no attempts left) rejects without asking again', async () => {
  let prompts = 0;
  const wx = makeWx({ routes: { 'POST /oauth/token': (r) => (form(r).subject_token_type === MFA_TOKEN_TYPE
    ? { statusCode: 400, data: { error: 'invalid_grant', attempts_left: 0 } } : mfaRequired()) } });
  const idp = createIdp({ issuer: ISSUER, clientId: CLIENT_ID, wx,
    onSecondFactor: async () => { prompts += 1; return { otp: '000000' }; } });
  const error = await idp.login().catch((e) => e);
  assert.equal(error.code, 'invalid_grant');
  assert.equal(error.attemptsLeft, 0);
  assert.equal(prompts, 1);
  assert.equal(idp.tokens(), null);
});

test('without onSecondFactor, or when the user cancels, login rejects with mfa_required', async () => {
  const wx = makeWx({ routes: { 'POST /oauth/token': () => mfaRequired() } });
  const error = await createIdp({ issuer: ISSUER, clientId: CLIENT_ID, wx }).login().catch((e) => e);
  assert.ok(error instanceof IdpError);
  assert.deepEqual([error.code, error.status, error.factors], ['mfa_required', 403, ['otp', 'recovery_code']]);
  assert.ok(!JSON.stringify(error).includes('mfa-secret-1') && !Object.keys(error).includes('mfaToken'));

  const cancelled = makeWx({ routes: { 'POST /oauth/token': () => mfaRequired() } });
  const idp = createIdp({ issuer: ISSUER, clientId: CLIENT_ID, wx: cancelled,
    onSecondFactor: async () => null });
  const refused = await idp.login().catch((e) => e);
  assert.equal(refused.code, 'mfa_required');
  assert.equal(cancelled.requests.length, 1);
});

test('acrValues is sent with the wx.login code', async () => {
  const wx = makeWx({ routes: { 'POST /oauth/token': () => tokenAnswer(1) } });
  await createIdp({ issuer: ISSUER, clientId: CLIENT_ID, wx, acrValues: 'urn:idp:acr:mfa' }).login();
  assert.equal(form(wx.requests[0]).acr_values, 'urn:idp:acr:mfa');
});

test('the CommonJS and ES module entries are one implementation', () => {
  const require = createRequire(import.meta.url);
  const cjs = require('../index.cjs');
  assert.equal(cjs.createIdp, createIdp);
  assert.equal(sdk.IdpError, IdpError);
  assert.throws(() => createIdp({ issuer: ISSUER }), TypeError);
});

test('a phone binding that merges into an account with a second factor asks for it (CONTRACT §6)', async () => {
  const wx = makeWx({ routes: {
    'POST /oauth/token': (r) => (form(r).subject_token_type === MFA_TOKEN_TYPE
      ? tokenAnswer('mfa') : tokenAnswer(1)),
    'POST /wechat/phone': () => ({ statusCode: 403, data: { ...mfaRequired().data,
      sub: 'survivor', phone_number: '+8613800138000', merged: true } }),
  } });
  const idp = createIdp({ issuer: ISSUER, clientId: CLIENT_ID, wx,
    onSecondFactor: async () => ({ otp: '654321' }) });
  await idp.login();
  const binding = await idp.bindPhone('phone-code');
  assert.deepEqual(binding, { sub: 'survivor', phone_number: '+8613800138000', merged: true });
  assert.equal(form(wx.requests.at(-1)).subject_token, 'mfa-secret-1');
  assert.equal(form(wx.requests.at(-1)).otp, '654321');
  assert.equal(await idp.accessToken(), 'at-mfa');
});

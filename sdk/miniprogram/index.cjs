'use strict';
// The IdP's mini-program SDK: no dependencies, only the `wx` API (or what uni-app / Taro give).
// CONTRACT §5 (token exchange), §6 (phone binding), §8 (scan-to-sign-in); RFC 6749 errors;
// second factors: `mfa_required` and the mfa_token exchange (the IdP's README, mini-program).

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JS_CODE = 'urn:wechat:params:oauth:token-type:js_code';
const MFA_TOKEN = 'urn:idp:params:oauth:token-type:mfa_token';
const MAX_SECOND_FACTOR_PROMPTS = 10; // a callback that never gives a usable code stops here
const DEFAULT_SCOPE = 'openid profile phone offline_access';
const DEFAULT_STORAGE_KEY = 'idp.tokens';
const DEFAULT_REFRESH_MARGIN = 60; // seconds before expiry at which a token counts as expired
const DEFAULT_TIMEOUT = 15000;

/** Every failure is one of these: `code` is the RFC 6749 error (or one of ours), never text. */
class IdpError extends Error {
  constructor(code, description, status, retryAfter, body) {
    super(description ? `${code}: ${description}` : code);
    this.name = 'IdpError';
    this.code = code;
    this.description = description || '';
    this.status = status || 0; // HTTP status; 0 when no answer came
    this.retryAfter = retryAfter || 0; // seconds, from Retry-After (503, 429)
    const answer = body || {};
    // mfa_required: the second factors the user can give here ("otp", "recovery_code").
    this.factors = Array.isArray(answer.factors) ? answer.factors.slice() : [];
    // A wrong code: how many more the mfa_token takes (null when the answer does not say).
    this.attemptsLeft = typeof answer.attempts_left === 'number' ? answer.attempts_left : null;
    // The mfa_token stays out of logs and JSON: not enumerable, and only the SDK reads it.
    Object.defineProperty(this, 'mfaToken', { value: answer.mfa_token || null, enumerable: false });
    // mfa_required from a phone binding (CONTRACT §6): what was bound before the factor.
    this.binding = answer.mfa_token && answer.sub
      ? { sub: answer.sub, phone_number: answer.phone_number, merged: Boolean(answer.merged) }
      : null;
  }
}

/** No answer: the network, the request domain list, a timeout. `code` is "network_error". */
class NetworkError extends IdpError {
  constructor(errMsg) {
    super('network_error', errMsg || 'request failed', 0);
    this.name = 'NetworkError';
  }
}

/** wx.login failed (rare: WeChat itself is unreachable). `code` is "wechat_login_failed". */
class WeChatLoginError extends IdpError {
  constructor(errMsg) {
    super('wechat_login_failed', errMsg || 'wx.login failed', 0);
    this.name = 'WeChatLoginError';
  }
}

function formEncode(data) {
  return Object.keys(data)
    .filter((key) => data[key] !== undefined && data[key] !== null)
    .map((key) => `${encodeURIComponent(key)}=${encodeURIComponent(data[key])}`)
    .join('&');
}

function headerValue(headers, name) {
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  const key = Object.keys(headers).find((k) => k.toLowerCase() === wanted);
  return key === undefined ? undefined : headers[key];
}

function parseBody(data) {
  if (typeof data !== 'string') return data || {};
  try { return JSON.parse(data); } catch (e) { return {}; }
}

class IdpClient {
  constructor(options) {
    if (!options || !options.issuer || !options.clientId) {
      throw new TypeError('createIdp({ issuer, clientId }) is required');
    }
    this.issuer = String(options.issuer).replace(/\/+$/, '');
    this.clientId = options.clientId;
    this.scope = options.scope || DEFAULT_SCOPE;
    this.acrValues = options.acrValues || null;
    this.onSecondFactor = options.onSecondFactor || null;
    this.storageKey = options.storageKey || DEFAULT_STORAGE_KEY;
    this.refreshMargin = options.refreshMargin === undefined
      ? DEFAULT_REFRESH_MARGIN : options.refreshMargin;
    this.timeout = options.timeout || DEFAULT_TIMEOUT;
    // eslint-disable-next-line no-undef
    this.wx = options.wx || (typeof wx !== 'undefined' ? wx : undefined);
    this.now = options.now || (() => Date.now());
    if (!this.wx) throw new TypeError('no `wx` API: pass { wx } (uni-app: uni, Taro: Taro)');
    this._refreshing = null; // one refresh at a time: every caller awaits the same promise
    this._loggingIn = null;
  }

  // --- tokens in wx storage ----------------------------------------------------------------------

  tokens() {
    const stored = this.wx.getStorageSync(this.storageKey);
    return stored && typeof stored === 'object' && stored.access_token ? stored : null;
  }

  _save(response) {
    const previous = this.tokens() || {};
    const tokens = {
      access_token: response.access_token,
      // Refresh tokens rotate: keep the newest; a response without one keeps the old.
      refresh_token: response.refresh_token || previous.refresh_token || null,
      id_token: response.id_token || previous.id_token || null,
      scope: response.scope || previous.scope || '',
      expires_at: this.now() + Number(response.expires_in || 0) * 1000,
    };
    this.wx.setStorageSync(this.storageKey, tokens);
    return tokens;
  }

  _forget() {
    this.wx.removeStorageSync(this.storageKey);
  }

  // --- the public API ----------------------------------------------------------------------------

  /** wx.login, then the token exchange (CONTRACT §5), and the second factor when the IdP asks
   * for one (`onSecondFactor`). Resolves to the stored tokens. */
  login() {
    if (!this._loggingIn) {
      this._loggingIn = this._login().finally(() => { this._loggingIn = null; });
    }
    return this._loggingIn;
  }

  async _login() {
    const code = await this._wxLogin();
    let response;
    try {
      response = await this._tokenRequest({
        grant_type: TOKEN_EXCHANGE,
        client_id: this.clientId,
        subject_token: code,
        subject_token_type: JS_CODE,
        scope: this.scope,
        acr_values: this.acrValues,
      });
    } catch (error) {
      if (!(error instanceof IdpError) || error.code !== 'mfa_required') throw error;
      response = await this._secondFactor(error);
    }
    return this._save(response);
  }

  /** The account has a second factor (or the client requires one): ask the app's
   * `onSecondFactor` for a code, and exchange it with the mfa_token. A wrong code asks again
   * while the mfa_token takes more; no callback, or none given (the user cancelled), rejects
   * with the `mfa_required` error. */
  async _secondFactor(required) {
    if (typeof this.onSecondFactor !== 'function' || !required.mfaToken) throw required;
    let last = null;
    for (let prompt = 0; prompt < MAX_SECOND_FACTOR_PROMPTS; prompt += 1) {
      const answer = await this.onSecondFactor({
        factors: required.factors.slice(),
        attemptsLeft: last ? last.attemptsLeft : null,
        error: last,
      });
      if (!answer || (!answer.otp && !answer.recoveryCode)) throw required;
      try {
        return await this._tokenRequest({
          grant_type: TOKEN_EXCHANGE,
          client_id: this.clientId,
          subject_token: required.mfaToken,
          subject_token_type: MFA_TOKEN,
          otp: answer.otp ? String(answer.otp) : undefined,
          recovery_code: answer.recoveryCode && !answer.otp ? String(answer.recoveryCode) : undefined,
        });
      } catch (error) {
        const retry = error instanceof IdpError && (error.code === 'invalid_request'
          || (error.code === 'invalid_grant' && error.attemptsLeft > 0));
        if (!retry) throw error;
        last = error; // a typo or a wrong code: ask again, saying why
      }
    }
    throw required;
  }

  /** A valid access token: the stored one, refreshed ahead of expiry (one refresh at a time), or
   * a new login when there is nothing to refresh or the refresh token is dead. */
  async accessToken() {
    const tokens = this.tokens();
    if (tokens && tokens.expires_at - this.refreshMargin * 1000 > this.now()) {
      return tokens.access_token;
    }
    const fresh = await this.refresh();
    return fresh.access_token;
  }

  /** Refreshes now (single-flight). Falls back to login() on invalid_grant or no refresh token. */
  refresh() {
    if (!this._refreshing) {
      this._refreshing = this._refresh().finally(() => { this._refreshing = null; });
    }
    return this._refreshing;
  }

  async _refresh() {
    const tokens = this.tokens();
    if (!tokens || !tokens.refresh_token) return this.login();
    try {
      const response = await this._tokenRequest({
        grant_type: 'refresh_token',
        client_id: this.clientId,
        refresh_token: tokens.refresh_token,
      });
      return this._save(response);
    } catch (error) {
      if (error instanceof IdpError && error.code === 'invalid_grant') {
        this._forget();
        return this.login(); // wx.login is silent in a mini-program
      }
      throw error;
    }
  }

  /** The getPhoneNumber button's code (CONTRACT §6). Keeps the tokens the answer carries: after a
   * merge the old ones are dead. A merge into an account with a second factor answers
   * `mfa_required` (the phone is bound): the factor is asked as at login. Resolves to
   * { sub, phone_number, merged }. */
  async bindPhone(code) {
    if (!code) throw new IdpError('invalid_request', 'the user declined to share the phone');
    let body;
    try {
      body = await this._withBearer('POST', '/wechat/phone', { code });
    } catch (error) {
      if (!(error instanceof IdpError) || error.code !== 'mfa_required' || !error.binding) {
        throw error;
      }
      body = { ...error.binding, ...(await this._secondFactor(error)) };
    }
    this._save(body);
    return { sub: body.sub, phone_number: body.phone_number, merged: Boolean(body.merged) };
  }

  /** What the confirm page shows for a scanned website code: { status, site, browser, network,
   * expires_in }. `scene` is the page's `options.scene` (decoded). */
  scanInfo(scene) {
    return this._withBearer('GET', `/wechat/scan/${encodeURIComponent(scene)}`);
  }

  /** Answers a website's scan-to-sign-in (CONTRACT §8): decision "confirm" or "refuse".
   * Resolves to { status }; IdpError "not_found" (404: unknown or expired), "already_answered"
   * (409). */
  confirmScan(scene, decision) {
    if (decision !== 'confirm' && decision !== 'refuse') {
      return Promise.reject(new IdpError('invalid_request', 'decision is "confirm" or "refuse"'));
    }
    return this._withBearer('POST', `/wechat/scan/${encodeURIComponent(scene)}`, { decision });
  }

  /** Revokes the refresh token (RFC 7009) and forgets the tokens. Never rejects for the network:
   * the local sign-out happens whatever the IdP answers. */
  async logout() {
    const tokens = this.tokens();
    this._forget();
    if (!tokens || !tokens.refresh_token) return;
    try {
      await this._request('POST', '/oauth/revoke', formEncode({
        token: tokens.refresh_token,
        token_type_hint: 'refresh_token',
        client_id: this.clientId,
      }), { 'content-type': 'application/x-www-form-urlencoded' });
    } catch (error) {
      // Revocation is best effort (RFC 7009 §2.2 lets clients ignore failures).
    }
  }

  // --- transport -------------------------------------------------------------------------------

  _wxLogin() {
    return new Promise((resolve, reject) => this.wx.login({
      timeout: this.timeout,
      success: (result) => (result && result.code
        ? resolve(result.code) : reject(new WeChatLoginError('no code'))),
      fail: (error) => reject(new WeChatLoginError(error && error.errMsg)),
    }));
  }

  _tokenRequest(form) {
    return this._request('POST', '/oauth/token', formEncode(form),
      { 'content-type': 'application/x-www-form-urlencoded' });
  }

  async _withBearer(method, path, json) {
    const call = async (token) => this._request(method, path,
      json === undefined ? undefined : JSON.stringify(json),
      { Authorization: `Bearer ${token}`, 'content-type': 'application/json' });
    try {
      return await call(await this.accessToken());
    } catch (error) {
      // Revoked meanwhile (a merge, a logout elsewhere): one fresh token, one retry.
      if (!(error instanceof IdpError) || error.status !== 401) throw error;
      return call((await this.refresh()).access_token);
    }
  }

  _request(method, path, data, header) {
    return new Promise((resolve, reject) => this.wx.request({
      url: this.issuer + path,
      method,
      data,
      header,
      dataType: 'json',
      timeout: this.timeout,
      success: (res) => {
        const body = parseBody(res.data);
        if (res.statusCode >= 200 && res.statusCode < 300) { resolve(body); return; }
        const retryAfter = Number(headerValue(res.header, 'Retry-After')) || 0;
        reject(new IdpError(body.error || `http_${res.statusCode}`, body.error_description,
          res.statusCode, retryAfter, body));
      },
      fail: (error) => reject(new NetworkError(error && error.errMsg)),
    }));
  }
}

function createIdp(options) {
  return new IdpClient(options);
}

module.exports = { createIdp, IdpClient, IdpError, NetworkError, WeChatLoginError };
